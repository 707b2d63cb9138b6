"""Sessions that renew their idle expiry at most once a minute instead of on every request.

Sessions end after SESSION_COOKIE_AGE without a request. Django's SESSION_SAVE_EVERY_REQUEST
renews that by writing the session row on every request: one more UPDATE and commit in every
screening decision. This store remembers the expiry it read; `SessionRenewMiddleware` saves the
session only when that expiry has fallen more than RENEW_AFTER behind a fresh one (the idle
timeout is then exact to within a minute).
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DbSessionStore
from django.utils import timezone

RENEW_AFTER = timedelta(seconds=60)


class SessionStore(DbSessionStore):
    stored_expiry: datetime | None = None

    def _get_session_from_db(self):
        # A private method of Django's database session store: not in django-stubs.
        row = super()._get_session_from_db()  # type: ignore[misc]
        self.stored_expiry = row.expire_date if row is not None else None
        return row


class SessionRenewMiddleware:
    """Mark a loaded, non-empty session modified when its stored expiry is due for renewal.

    Placed after SessionMiddleware, so SessionMiddleware saves it on the way out.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        stored = getattr(session, "stored_expiry", None)
        if session is not None and stored is not None and not session.modified:
            fresh = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE)
            if fresh - stored > RENEW_AFTER and not session.is_empty():
                session.modified = True
        return response
