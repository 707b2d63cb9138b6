"""Onboarding without a browser: who may create a review, invitation links in every state, the
invitation pages' access rules and bad input, the administrator account command."""

import json
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from screening.models import AuditEvent, Invitation, Membership, Review
from screening.selectors.invitations import invitation_from_token, invitation_token
from screening.services.backup import review_export, review_import
from screening.services.invitations import invitation_create

from .factories import UserFactory

SITE = "http://testserver/"


def invite(review, cast, invitee="new@example.org", role="reviewer") -> Invitation:
    return invitation_create(
        review=review, by=cast["owner"], invitee=invitee, role=role, site_url=SITE
    )


def open_url(invitation) -> str:
    return reverse("screening:invitation_open", args=[invitation_token(invitation)])


def test_by_default_a_user_who_is_not_staff_creates_a_review_and_owns_it(cast, client_for):
    response = client_for("outsider").post(
        reverse("screening:review_create"), {"slug": "mine", "title": "Mine"}
    )
    assert response.status_code == 302
    assert Review.objects.get(slug="mine").memberships.get().user == cast["outsider"]


def test_staff_only_creation_refuses_with_the_styled_page_and_stores_nothing(
    review, client_for, settings
):
    settings.SLRWEB_REVIEW_CREATION = "staff"
    response = client_for("owner").post(
        reverse("screening:review_create"), {"slug": "mine", "title": "Mine"}
    )
    assert response.status_code == 403
    html = response.content.decode()
    assert "Ask an administrator" in html and 'aria-label="Main"' in html
    assert not Review.objects.filter(slug="mine").exists()


@pytest.mark.django_db(transaction=True)
def test_an_invitation_by_email_is_mailed_once_committed(review_and_cast, mailoutbox):
    review, cast = review_and_cast
    invitation = invite(review, cast)
    assert [m.to for m in mailoutbox] == [["new@example.org"]]
    token = re.search(r"/invitations/(\S+)/", mailoutbox[0].body).group(1)
    assert invitation_from_token(token).invitation == invitation
    assert review.title in mailoutbox[0].subject
    assert AuditEvent.objects.filter(action="invitation.create", object_id=str(invitation.pk))


def test_an_invitation_to_an_address_of_an_account_names_that_account(review, cast):
    invitation = invite(review, cast, invitee=cast["outsider"].email.upper())
    assert invitation.user == cast["outsider"]


def test_inviting_again_replaces_the_open_invitation(review, cast):
    first = invite(review, cast)
    second = invite(review, cast, role="viewer")
    first.refresh_from_db()
    assert first.revoked_at is not None and second.revoked_at is None


@pytest.mark.parametrize(
    "invitee, message",
    [("reviewer", "already in the team"), ("", "required")],
)
def test_bad_invitations_are_refused_and_nothing_is_stored(
    review, client_for, invitee, message, mailoutbox
):
    response = client_for("owner").post(
        reverse("screening:invitation_list", args=[review.slug]),
        {"invitee": invitee, "role": "reviewer"},
    )
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not Invitation.objects.exists() and not mailoutbox


def _invite_by_username(client, review, username):
    """The owner's invitation by username: the response, and what the owner sees after it."""
    url = reverse("screening:invitation_list", args=[review.slug])
    response = client.post(url, {"invitee": username, "role": "reviewer"})
    html = client.get(url).content.decode()
    alert = re.search(r'<div class="alert[^"]*"[^>]*>(.*?)</div>', html, re.S).group(1).strip()
    row = re.search(r"<tr data-invitation=[^>]*>(.*?)</tr>", html, re.S).group(1)
    row = re.sub(
        r'data-invitation="\d+"|/\d+/revoke/|name="csrfmiddlewaretoken" value="\w+"', "", row
    )
    # The expiry is "now + a week" to the minute: two invitations a moment apart may straddle
    # a minute, so the cell is compared by its shape, not its minute.
    row, expiries = re.subn(r"<td>\d{1,2} \w{3} \d{4} \d{2}:\d{2}</td>", "<td>EXPIRY</td>", row)
    assert expiries == 1, row
    return response, alert.replace(username, "NAME"), row.replace(username, "NAME")


def test_inviting_an_unknown_or_a_known_username_answers_alike(
    review, cast, client_for, mailoutbox, django_capture_on_commit_callbacks
):
    """An owner cannot tell whether an account exists: same status, redirect, message and row
    (no link, no e-mail address); the existing account joins only when it accepts."""
    owner = client_for("owner")
    with django_capture_on_commit_callbacks(execute=True):
        unknown, unknown_alert, unknown_row = _invite_by_username(owner, review, "nobody")
    Invitation.objects.update(revoked_at=timezone.now())  # the next row is the only open one
    with django_capture_on_commit_callbacks(execute=True):
        known, known_alert, known_row = _invite_by_username(owner, review, "outsider")
    assert (unknown.status_code, unknown["Location"]) == (known.status_code, known["Location"])
    assert unknown.status_code == 302
    assert unknown_alert == known_alert
    assert "if an account with that username exists" in known_alert
    assert unknown_row == known_row
    assert cast["outsider"].email not in known_row and "/invitations/" not in known_row
    assert [m.to for m in mailoutbox] == [[cast["outsider"].email]]
    assert not Membership.objects.filter(review=review, user=cast["outsider"]).exists()
    invitation = Invitation.objects.get(review=review, user=cast["outsider"])
    outsider = client_for("outsider")
    home = reverse("screening:review_home", args=[review.slug])
    assert outsider.get(home).status_code == 404
    assert outsider.post(open_url(invitation)).status_code == 302
    assert Membership.objects.get(review=review, user=cast["outsider"]).role == "reviewer"
    assert outsider.get(home, follow=True).status_code == 200


def test_an_invitation_of_an_unknown_username_lets_nobody_in(review, cast, client_for):
    invitation = invite(review, cast, invitee="nobody")
    assert (invitation.user, invitation.email, invitation.username) == (None, "", "nobody")
    client = Client()
    assert client.get(open_url(invitation)).status_code == 404
    response = client.post(
        open_url(invitation),
        {"username": "nobody", "password1": "a-long-pass-123", "password2": "a-long-pass-123"},
    )
    assert response.status_code == 404
    assert client_for("outsider").post(open_url(invitation)).status_code == 404
    assert not Membership.objects.filter(user__username__in=["nobody", "outsider"]).exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


@pytest.mark.parametrize(
    "username, status", [("reviewer", 403), ("viewer", 403), ("outsider", 404)]
)
def test_only_owners_see_and_send_invitations(review, client_for, username, status):
    url = reverse("screening:invitation_list", args=[review.slug])
    client = client_for(username)
    assert client.get(url).status_code == status
    assert client.post(url, {"invitee": "x@example.org", "role": "owner"}).status_code == status
    assert not Invitation.objects.exists()


def test_anonymous_is_sent_to_login_and_revoke_needs_post(review, cast, client_for):
    invitation = invite(review, cast)
    url = reverse("screening:invitation_list", args=[review.slug])
    assert Client().get(url)["Location"].startswith(reverse("login"))
    revoke = reverse("screening:invitation_revoke", args=[review.slug, invitation.pk])
    assert client_for("owner").get(revoke).status_code == 405
    assert client_for("reviewer").post(revoke).status_code == 403
    invitation.refresh_from_db()
    assert invitation.revoked_at is None


@pytest.mark.parametrize(
    "change, status, text",
    [
        ({"expires_at": timezone.now() - timedelta(minutes=1)}, 410, "has expired"),
        ({"revoked_at": timezone.now()}, 410, "withdrawn"),
        ({"accepted_at": timezone.now()}, 410, "already been used"),
    ],
)
def test_a_closed_invitation_link_says_why_and_lets_nobody_in(review, cast, change, status, text):
    invitation = invite(review, cast)
    Invitation.objects.filter(pk=invitation.pk).update(**change)
    client = Client()
    assert client.get(open_url(invitation)).status_code == status
    response = client.post(
        open_url(invitation),
        {"username": "sneaky", "password1": "a-long-pass-123", "password2": "a-long-pass-123"},
    )
    assert response.status_code == status and text in response.content.decode()
    assert not Membership.objects.filter(user__username="sneaky").exists()


def test_a_mangled_link_is_not_found(review, cast):
    invitation = invite(review, cast)
    response = Client().get(open_url(invitation)[:-3] + "xyz/")
    assert response.status_code == 404
    assert "not valid" in response.content.decode()


def test_a_weak_password_is_refused_and_no_account_is_made(review, cast):
    invitation = invite(review, cast)
    response = Client().post(
        open_url(invitation), {"username": "newbie", "password1": "123", "password2": "123"}
    )
    assert response.status_code == 422
    assert "too short" in response.content.decode()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None
    assert not Membership.objects.filter(user__username="newbie").exists()


def test_another_account_cannot_accept_an_invitation_naming_someone(review, cast, client_for):
    invitation = invite(review, cast, invitee="outsider")
    stranger = UserFactory(username="stranger")
    response = client_for(stranger.username).post(open_url(invitation))
    assert response.status_code == 422
    assert "for another account" in response.content.decode()
    assert not Membership.objects.filter(user=stranger).exists()
    response = client_for("outsider").post(open_url(invitation))
    assert response.status_code == 302
    assert Membership.objects.get(review=review, user=cast["outsider"]).role == "reviewer"


def test_a_member_accepting_keeps_their_role(review, cast, client_for):
    invitation = invite(review, cast, invitee="new@example.org", role="viewer")
    client_for("reviewer").post(open_url(invitation))
    assert Membership.objects.get(review=review, user=cast["reviewer"]).role == "reviewer"
    invitation.refresh_from_db()
    assert invitation.accepted_by == cast["reviewer"]


def test_the_backup_carries_invitations(review, cast):
    invite(review, cast, invitee="outsider", role="viewer")
    invite(review, cast, invitee="nobody")
    data = json.loads(json.dumps(review_export(review=review)))
    copy = review_import(data=data, slug="copy")
    nobody = Invitation.objects.get(review=copy, username="nobody")
    assert (nobody.user, nobody.email) == (None, "")
    carried = Invitation.objects.get(review=copy, username="outsider")
    assert (carried.user, carried.role, carried.invited_by) == (
        cast["outsider"],
        "viewer",
        cast["owner"],
    )


def test_admin_account_is_created_once_and_its_password_printed_once(db, capsys, monkeypatch):
    monkeypatch.setenv("SLRWEB_ADMIN_PASSWORD", "an-admin-secret-99")
    call_command("admin_account")
    first = json.loads(capsys.readouterr().out)
    assert first == {"username": "admin", "password": "an-admin-secret-99", "created": True}
    call_command("admin_account")
    assert json.loads(capsys.readouterr().out) == {
        "username": "admin",
        "password": None,
        "created": False,
    }
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser and admin.check_password("an-admin-secret-99")
    assert len(mail.outbox) == 0


def test_each_sidebar_link_opens_a_page_that_marks_that_link_current(review, client_for):
    client = client_for("owner")
    html = client.get(reverse("screening:dashboard", args=[review.slug])).content.decode()
    nav = html[html.index('<nav aria-label="Review">') :]
    nav = nav[: nav.index("</nav>")]
    links = re.findall(r'<a class="nav-link[^"]*"(?: aria-current="page")? href="([^"]+)">', nav)
    review_links = [href for href in links if href.startswith(f"/r/{review.slug}/")]
    assert f"/r/{review.slug}/ranking/" in review_links
    assert f"/r/{review.slug}/invitations/" in review_links
    for href in review_links:
        page = client.get(href).content.decode()
        current = re.findall(r'aria-current="page" href="([^"]+)"', page)
        assert current == [href], href


def test_reviewers_see_no_invitation_item_and_land_on_the_stage_list_when_done(review, client_for):
    client = client_for("reviewer")
    response = client.get(reverse("screening:review_home", args=[review.slug]))
    assert response["Location"] == reverse("screening:screening_home", args=[review.slug])
    html = client.get(response["Location"]).content.decode()
    assert "/invitations/" not in html


def test_left_for_a_reviewer_counts_only_open_studies_they_have_not_decided(review, cast):
    from screening.selectors.screening import remaining_for_reviewer
    from screening.services.screening import decision_record

    from .screening_helpers import make_studies, stage

    title = stage(review)
    a, b, c, d = make_studies(review, 4)

    def decide(study, username, verdict):
        decision_record(
            review=review, study=study, stage=title, reviewer=cast[username], verdict=verdict
        )

    def left(username):
        return remaining_for_reviewer(review=review, stage=title, reviewer=cast[username])

    assert left("reviewer") == 4
    decide(a, "reviewer", "include")  # mine: gone for me, still open for reviewer2
    decide(b, "reviewer2", "exclude")  # one of two slots: still open for me
    decide(c, "reviewer2", "exclude")
    decide(c, "owner", "include")  # both slots taken (a conflict): gone for me too
    decide(d, "reviewer2", "exclude")
    decide(d, "owner", "exclude")  # agreement: d leaves the stage
    assert left("reviewer") == 1  # b
    assert left("reviewer2") == 1  # a
    decide(b, "reviewer", "exclude")  # b agrees and leaves
    assert left("reviewer") == 0
