from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import models

from ..models import AuditEvent, Review


def audit_event_record(
    *,
    review: Review | None,
    actor: User | AnonymousUser | None,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    before: Any = None,
    after: Any = None,
) -> AuditEvent:
    """Append an audit event; call it inside the service's transaction."""
    if obj is not None:
        object_type = object_type or obj._meta.model_name or ""
        object_id = object_id or obj.pk
    return AuditEvent.objects.create(
        review=review,
        actor=actor if isinstance(actor, User) and actor.is_authenticated else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=before,
        after=after,
    )
