"""Accounts and sessions: login throttling, password reset by e-mail, policy, session expiry."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from screening.models import AuditEvent

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db
LOGIN = "/accounts/login/"


def attempt(client: Client, username: str, password: str, address: str):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def is_logged_in(client: Client) -> bool:
    return client.get(reverse("screening:review_list")).status_code == 200


def test_an_account_is_locked_after_five_wrong_passwords_from_any_addresses(cast, settings):
    for number in range(settings.AXES_FAILURE_LIMIT - 1):
        response = attempt(Client(), "owner", "wrong", f"10.0.0.{number + 1}")
        assert response.status_code == 200 and "Please enter a correct" in response.text
    # The fifth wrong password locks the account at once.
    assert attempt(Client(), "owner", "wrong", "10.0.0.9").status_code == 429

    client = Client()
    locked = attempt(client, "owner", PASSWORD, "10.0.1.1")
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.text
    assert "Try again in 15 minutes" in locked.text
    assert not is_logged_in(client)
    # Another account from a fresh address is not affected.
    other = Client()
    assert attempt(other, "reviewer", PASSWORD, "10.0.1.2").status_code == 302
    assert is_logged_in(other)


def test_an_address_is_locked_after_five_wrong_passwords_on_any_accounts(cast, settings):
    for number in range(settings.AXES_FAILURE_LIMIT):
        attempt(Client(), f"guess{number}", "wrong", "10.9.9.9")

    client = Client()
    assert attempt(client, "owner", PASSWORD, "10.9.9.9").status_code == 429
    assert not is_logged_in(client)
    elsewhere = Client()
    assert attempt(elsewhere, "owner", PASSWORD, "10.8.8.8").status_code == 302
    assert is_logged_in(elsewhere)


def test_a_successful_login_clears_the_account_failures(cast, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(Client(), "owner", "wrong", "10.1.1.1")
    assert attempt(Client(), "owner", PASSWORD, "10.1.1.2").status_code == 302
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(Client(), "owner", "wrong", "10.1.1.3")
    assert attempt(Client(), "owner", PASSWORD, "10.1.1.4").status_code == 302


def test_password_reset_link_from_the_mail_sets_a_new_password(cast, mailoutbox):
    user = get_user_model().objects.get(username="reviewer")
    client = Client()
    response = client.post(reverse("password_reset"), {"email": user.email})
    assert response.status_code == 302 and response.url == reverse("password_reset_done")
    assert len(mailoutbox) == 1 and mailoutbox[0].to == [user.email]
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+)", mailoutbox[0].body).group(1)

    form = client.get(link, follow=True)
    assert form.status_code == 200 and "Set a new password" in form.text
    # The password policy is shown where the password is chosen.
    assert "at least 10 characters" in form.text
    set_url = form.redirect_chain[-1][0]
    too_short = client.post(set_url, {"new_password1": "short", "new_password2": "short"})
    assert too_short.status_code == 200 and "too short" in too_short.text
    new_password = "a-new-long-passphrase"
    done = client.post(set_url, {"new_password1": new_password, "new_password2": new_password})
    assert done.status_code == 302 and done.url == reverse("password_reset_complete")

    user.refresh_from_db()
    assert user.check_password(new_password) and not user.check_password(PASSWORD)
    fresh = Client()
    assert attempt(fresh, "reviewer", new_password, "10.2.2.2").status_code == 302
    assert is_logged_in(fresh)
    # The link works once.
    assert "has been used already or has expired" in client.get(link, follow=True).text


def test_password_reset_for_an_unknown_address_says_the_same_and_sends_nothing(cast, mailoutbox):
    response = Client().post(reverse("password_reset"), {"email": "nobody@example.org"})
    assert response.status_code == 302 and response.url == reverse("password_reset_done")
    assert mailoutbox == []


def test_the_account_page_shows_the_password_policy(cast, client_for):
    page = client_for("owner").get(reverse("account"))
    assert page.status_code == 200
    assert "at least 10 characters" in page.text
    assert "entirely numeric" in page.text
    assert "Log out everywhere" in page.text


def test_a_session_ends_after_the_idle_timeout_and_each_request_renews_it(cast, settings):
    client = Client()
    attempt(client, "owner", PASSWORD, "10.3.3.3")
    key = client.session.session_key
    before = Session.objects.get(session_key=key).expire_date
    assert timedelta(0) < before - timezone.now() <= timedelta(seconds=settings.SESSION_COOKIE_AGE)
    Session.objects.filter(session_key=key).update(expire_date=before - timedelta(minutes=30))
    assert is_logged_in(client)
    renewed = Session.objects.get(session_key=key).expire_date
    assert renewed > before - timedelta(minutes=1)

    Session.objects.filter(session_key=key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    response = client.get(reverse("screening:review_list"))
    assert response.status_code == 302 and response.url.startswith(LOGIN)


def test_log_out_everywhere_ends_every_session_of_the_account_only(cast):
    laptop, phone, colleague = Client(), Client(), Client()
    attempt(laptop, "owner", PASSWORD, "10.4.4.1")
    attempt(phone, "owner", PASSWORD, "10.4.4.2")
    attempt(colleague, "reviewer", PASSWORD, "10.4.4.3")

    response = laptop.post(reverse("logout_everywhere"))
    assert response.status_code == 302 and response.url == reverse("login")
    assert not is_logged_in(laptop) and not is_logged_in(phone)
    assert is_logged_in(colleague)
    owner = get_user_model().objects.get(username="owner")
    assert not [
        session
        for session in Session.objects.all()
        if session.get_decoded().get("_auth_user_id") == str(owner.pk)
    ]
    event = AuditEvent.objects.get(action="user.sessions_end_all")
    assert event.actor == owner and event.after == {"sessions_ended": 2}


def test_every_answer_carries_a_csp_without_inline_scripts_and_a_referrer_policy(cast, client):
    response = client.get(LOGIN)
    policy = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert "unsafe" not in directives["script-src"] and "unsafe" not in directives["default-src"]
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"


def test_behind_the_proxy_an_address_lockout_hits_only_that_client(cast, settings):
    # As in docker-compose.yml (BEHIND_PROXY=1): Caddy sets X-Forwarded-For to the client.
    settings.AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")

    def through_proxy(client, username, password, client_address):
        return client.post(
            LOGIN,
            {"username": username, "password": password},
            REMOTE_ADDR="172.18.0.5",
            HTTP_X_FORWARDED_FOR=client_address,
        )

    for number in range(settings.AXES_FAILURE_LIMIT):
        through_proxy(Client(), f"guess{number}", "wrong", "203.0.113.5")
    attacker = Client()
    assert through_proxy(attacker, "owner", PASSWORD, "203.0.113.5").status_code == 429
    colleague = Client()
    assert through_proxy(colleague, "owner", PASSWORD, "198.51.100.7").status_code == 302
    assert is_logged_in(colleague)


def test_without_a_proxy_a_forged_forwarded_address_does_not_escape_the_lockout(cast, settings):
    for number in range(settings.AXES_FAILURE_LIMIT):
        Client().post(
            LOGIN,
            {"username": f"guess{number}", "password": "wrong"},
            REMOTE_ADDR="10.7.7.7",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{number}",
        )
    forged = Client().post(
        LOGIN,
        {"username": "owner", "password": PASSWORD},
        REMOTE_ADDR="10.7.7.7",
        HTTP_X_FORWARDED_FOR="192.0.2.200",
    )
    assert forged.status_code == 429
