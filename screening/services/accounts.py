from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from .audit import audit_event_record


@transaction.atomic
def user_sessions_end_all(*, user: User) -> int:
    """Delete every live session of `user` (all browsers and devices); returns how many.

    Sessions are stored signed and encoded, so each live one is decoded to find its account.
    """
    user_id = str(user.pk)
    ended = [
        session.session_key
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if session.get_decoded().get("_auth_user_id") == user_id
    ]
    Session.objects.filter(session_key__in=ended).delete()
    audit_event_record(
        review=None,
        actor=user,
        action="user.sessions_end_all",
        obj=user,
        object_type="user",
        after={"sessions_ended": len(ended)},
    )
    return len(ended)
