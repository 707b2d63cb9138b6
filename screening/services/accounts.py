from django.contrib.auth import get_user_model
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


@transaction.atomic
def admin_account_ensure(*, username: str, password: str, email: str = "") -> tuple[User, bool]:
    """The site administrator (staff and superuser), created once with `password`.

    An existing account is left as it is (its password may have been changed since), so
    running this at every start is harmless; returns (user, created).
    """
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is not None:
        return user, False
    user = user_model.objects.create_superuser(username=username, email=email, password=password)
    audit_event_record(
        review=None,
        actor=None,
        action="user.admin_create",
        obj=user,
        object_type="user",
        after={"username": username},
    )
    return user, True
