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
from django.db import connection
from django.utils import timezone

from screening.selectors.rows import model_columns, model_rows

RENEW_AFTER = timedelta(seconds=60)


class SessionStore(DbSessionStore):
    stored_expiry: datetime | None = None

    def _get_session_from_db(self):
        """The unexpired session row, as Django's store reads it, but sent as SQL text: every
        request reads it, and the ORM's compiler cost ~0.5 ms of CPU more per read
        (screening.selectors.rows). A private method of Django's store (not in django-stubs)."""
        model = self.model
        rows = model_rows(
            model,
            f"SELECT {model_columns(model)} FROM {connection.ops.quote_name(model._meta.db_table)}"
            " WHERE session_key = %s AND expire_date > %s",
            [self.session_key, connection.ops.adapt_datetimefield_value(timezone.now())],
        )
        row = rows[0][0] if rows else None
        if row is None:
            self._session_key = None  # as Django's store: a new key if the session is saved
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
