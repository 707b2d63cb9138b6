"""The idle expiry is renewed at most once a minute, not by a session write on every request."""

from datetime import timedelta

from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from slrweb.sessions import RENEW_AFTER


def _session_writes(client: Client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("screening:review_list")).status_code == 200
    return sum(
        1
        for query in queries.captured_queries
        if query["sql"].startswith(("UPDATE", "INSERT")) and "django_session" in query["sql"]
    )


def test_a_fresh_session_is_not_written_again_and_an_old_expiry_is_renewed(cast):
    client = Client()
    client.force_login(cast["reviewer"], backend="django.contrib.auth.backends.ModelBackend")
    key = client.session.session_key
    _session_writes(client)  # the first request after the login
    stored = Session.objects.get(session_key=key).expire_date
    assert _session_writes(client) == 0
    assert Session.objects.get(session_key=key).expire_date == stored

    # Past the renewal slack the next request renews the stored expiry, and the user stays in.
    older = stored - RENEW_AFTER - timedelta(seconds=5)
    Session.objects.filter(session_key=key).update(expire_date=older)
    assert _session_writes(client) == 1
    assert Session.objects.get(session_key=key).expire_date > stored - timedelta(seconds=5)
    assert client.get(reverse("screening:review_list")).status_code == 200


def test_the_session_row_reads_as_djangos_own_store_reads_it(cast):
    """The store reads its row as SQL text: the same data and expiry as Django's database
    store, and an expired row is not a session (the user is asked to log in again)."""
    from django.contrib.sessions.backends.db import SessionStore as DjangoStore

    from slrweb.sessions import SessionStore

    client = Client()
    client.force_login(cast["reviewer"], backend="django.contrib.auth.backends.ModelBackend")
    key = client.session.session_key
    ours, django_own = SessionStore(session_key=key), DjangoStore(session_key=key)
    assert ours.load() == django_own.load()
    assert ours.load()["_auth_user_id"] == str(cast["reviewer"].pk)
    assert ours.stored_expiry == Session.objects.get(session_key=key).expire_date

    Session.objects.filter(session_key=key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    expired = SessionStore(session_key=key)
    assert expired.load() == {} and expired.session_key is None
    assert expired.stored_expiry is None
    answer = client.get(reverse("screening:review_list"))
    assert answer.status_code == 302 and reverse("login") in answer["Location"]
