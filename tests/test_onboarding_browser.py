"""Chromium: a new team's first hour. Creating a review, inviting people by e-mail and by
username, resetting a password, and finding one's way (landing page, active sidebar item,
counts that move). Each test reloads and checks what was stored."""

import re

import pytest
from django.core import mail

from screening.models import Decision, Invitation, Membership, Review

from .conftest import PASSWORD
from .screening_helpers import make_studies

pytestmark = pytest.mark.browser
SETTLED = ":not(.htmx-added):not(.htmx-settling)"
LINK = re.compile(r"https?://[^/\s]+(/\S+)")


def new_page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    return context, context.new_page()


def log_in(page, username, password=PASSWORD):
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def mailed_link(index=-1) -> str:
    return LINK.search(mail.outbox[index].body).group(1)


def test_a_user_who_is_not_staff_creates_a_review_and_owns_it(login_page, cast):
    page = login_page("outsider")
    assert not cast["outsider"].is_staff
    page.goto("/")
    page.click("text=New review")
    page.fill("#id_slug", "team-review")
    page.fill("#id_title", "Our team's review")
    page.click("button:has-text('Create review')")
    page.wait_for_url("**/r/team-review/protocol/")
    review = Review.objects.get(slug="team-review")
    assert Membership.objects.get(review=review, user=cast["outsider"]).role == "owner"
    page.goto("/")
    page.reload()
    row = page.locator(".list-group-item", has_text="Our team's review")
    assert row.locator(".badge").inner_text() == "Owner"


def test_with_staff_only_creation_a_user_gets_the_styled_refusal(login_page, cast, settings):
    settings.SLRWEB_REVIEW_CREATION = "staff"
    page = login_page("owner")
    page.goto("/")
    assert page.locator("text=New review").count() == 0
    response = page.goto("/reviews/new/")
    assert response.status == 403
    assert page.locator("h1").inner_text() == "Not allowed"
    assert "Ask an administrator" in page.inner_text("main")
    # The styled page extends base.html: the navigation bar and a way home are there.
    assert page.locator("nav[aria-label=Main]").count() == 1
    page.click("main >> text=Go to your reviews")
    page.wait_for_selector("h1:has-text('Your reviews')")
    assert not Review.objects.exclude(slug="test-review").exists()


def test_a_new_user_invited_by_email_sets_a_password_and_screens(
    browser, live_server, login_page, review, cast, mailoutbox
):
    studies = make_studies(review, 2)
    page = login_page("owner")
    page.goto(f"/r/{review.slug}/dashboard/")
    page.click("nav[aria-label=Review] >> text=Invite people")
    page.fill("#id_invitee", "newcomer@example.org")
    page.select_option("#id_role", "reviewer")
    page.click("button:has-text('Invite')")
    page.wait_for_selector("text=Invitation sent to newcomer@example.org")
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["newcomer@example.org"]
    link = mailed_link()

    context, newcomer = new_page(browser, live_server)
    try:
        newcomer.goto(link)
        assert "as reviewer" in newcomer.inner_text("main")
        newcomer.fill("#id_username", "newcomer")
        newcomer.fill("#id_password1", "a-long-new-password-42")
        newcomer.fill("#id_password2", "a-long-new-password-42")
        newcomer.click("button:has-text('Create account and join')")
        # A reviewer lands on the first stage with studies left for them.
        newcomer.wait_for_url(f"**/r/{review.slug}/screen/title/")
        membership = Membership.objects.get(review=review, user__username="newcomer")
        assert membership.role == "reviewer"
        assert membership.user.email == "newcomer@example.org"
        assert Invitation.objects.get().accepted_by == membership.user
        newcomer.wait_for_selector(f"#screen-panel[data-study]{SETTLED}")
        shown = int(newcomer.get_attribute("#screen-panel", "data-study"))
        newcomer.keyboard.press("i")
        newcomer.wait_for_selector(f"#screen-panel:not([data-study='{shown}']){SETTLED}")
        assert Decision.objects.filter(reviewer=membership.user, study_id=shown).exists()
        newcomer.reload()
        assert newcomer.inner_text("[data-progress=left]") == "1"
        newcomer.goto("/")
        assert newcomer.locator(".list-group-item", has_text=review.title).count() == 1
        # The link is used up.
        newcomer.goto(link)
        assert newcomer.get_attribute("[data-testid=invitation-state]", "data-state") == "accepted"
    finally:
        context.close()
    page.reload()
    assert page.locator("text=No open invitations.").count() == 1
    assert {s.pk for s in studies} >= {shown}


def test_an_existing_user_invited_by_username_accepts_from_the_review_list(
    browser, live_server, login_page, review, cast, mailoutbox
):
    page = login_page("owner")
    # The protocol page's team section invites; it adds nobody directly.
    page.goto(f"/r/{review.slug}/protocol/#team")
    assert page.locator("#team form#team-add").count() == 0
    page.click("#team a:has-text('Invite people')")
    page.wait_for_url(f"**/r/{review.slug}/invitations/")
    page.fill("#id_invitee", "outsider")
    page.select_option("#id_role", "viewer")
    page.click("button:has-text('Invite')")
    page.wait_for_selector("[data-invitation]")
    assert mailoutbox[0].to == [cast["outsider"].email]
    assert not Membership.objects.filter(review=review, user=cast["outsider"]).exists()

    context, outsider = new_page(browser, live_server)
    try:
        log_in(outsider, "outsider")
        outsider.goto("/")
        outsider.click("text=Open invitation")
        outsider.click("button:has-text('Accept and open the review as outsider')")
        # A viewer lands on the dashboard.
        outsider.wait_for_url(f"**/r/{review.slug}/dashboard/")
        assert Membership.objects.get(review=review, user=cast["outsider"]).role == "viewer"
        outsider.reload()
        assert outsider.locator("nav[aria-label=Review] [aria-current=page]").inner_text() == (
            "Dashboard"
        )
        outsider.goto("/")
        assert outsider.locator("#invitations-title").count() == 0
        row = outsider.locator(".list-group-item", has_text=review.title)
        assert row.locator(".badge").inner_text() == "Viewer"
    finally:
        context.close()
    page.goto(f"/r/{review.slug}/protocol/#team")
    assert page.locator("#team [data-member=outsider]").count() == 1


def test_a_withdrawn_invitation_link_says_so(browser, live_server, login_page, review, mailoutbox):
    page = login_page("owner")
    page.goto(f"/r/{review.slug}/invitations/")
    page.fill("#id_invitee", "late@example.org")
    page.click("button:has-text('Invite')")
    page.wait_for_selector("[data-invitation]")
    link = mailed_link()
    page.click("button:has-text('Withdraw')")
    page.wait_for_selector("text=No open invitations.")
    assert Invitation.objects.get().revoked_at is not None
    context, stranger = new_page(browser, live_server)
    try:
        response = stranger.goto(link)
        assert response.status == 410
        assert "withdrawn" in stranger.inner_text("main")
        assert stranger.locator("#id_password1").count() == 0
    finally:
        context.close()


def test_password_reset_by_mail_then_the_new_password_works_after_logout(page, cast, mailoutbox):
    page.goto("/accounts/login/")
    page.click("text=Forgot your password?")
    page.fill("#id_email", cast["reviewer"].email)
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/password_reset/done/")
    page.goto(mailed_link())
    page.fill("#id_new_password1", "a-brand-new-secret-77")
    page.fill("#id_new_password2", "a-brand-new-secret-77")
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/reset/done/")
    cast["reviewer"].refresh_from_db()
    assert cast["reviewer"].check_password("a-brand-new-secret-77")
    log_in(page, "reviewer", "a-brand-new-secret-77")
    page.reload()
    assert page.inner_text("nav[aria-label=Main] a[href='/accounts/']") == "reviewer"
    page.click("button:has-text('Log out')")
    page.wait_for_url(lambda url: "/accounts/logout/" in url or "/accounts/login/" in url)
    page.goto("/accounts/login/")
    page.fill("#id_username", "reviewer")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("form .alert-danger")
    assert "/accounts/login/" in page.url


@pytest.mark.parametrize(
    "username, landing, active",
    [
        ("owner", "/dashboard/", "Dashboard"),
        ("reviewer", "/screen/title/", "Screening"),
        ("viewer", "/dashboard/", "Dashboard"),
    ],
)
def test_opening_a_review_lands_each_role_on_its_page(
    login_page, review, cast, username, landing, active
):
    make_studies(review, 1)
    page = login_page(username)
    page.goto("/")
    page.click(f"text={review.title}")
    page.wait_for_url(f"**/r/{review.slug}{landing}")
    page.reload()
    current = page.locator("nav[aria-label=Review] [aria-current=page]")
    assert current.count() == 1 and current.inner_text() == active


def test_every_section_marks_its_sidebar_item_and_ranking_is_reachable(login_page, review, cast):
    make_studies(review, 1)
    page = login_page("owner")
    page.goto(f"/r/{review.slug}/dashboard/")
    for item in ["Ranking and stopping", "Protocol", "Screening", "Studies", "Reports"]:
        page.click(f"nav[aria-label=Review] >> text={item}")
        page.wait_for_load_state()
        current = page.locator("nav[aria-label=Review] [aria-current=page]")
        assert current.count() == 1 and current.inner_text() == item, page.url
    page.goto(f"/r/{review.slug}/screen/title/")
    assert page.inner_text("nav[aria-label=Review] [aria-current=page]") == "Screening"
    # The stage mode label says what the seed's routing does.
    page.goto(f"/r/{review.slug}/protocol/")
    assert "an include goes straight to full text" in page.inner_text("#screening")


def test_a_viewer_opening_a_stage_gets_the_styled_refusal(login_page, review, cast):
    page = login_page("viewer")
    response = page.goto(f"/r/{review.slug}/screen/title/")
    assert response.status == 403
    assert "Ask the review's owner" in page.inner_text("main")
    page.click("main >> text=Go to your reviews")
    page.wait_for_selector(f"text={review.title}")


def test_left_for_you_moves_with_each_decision_and_after_reload(
    browser, live_server, login_page, review, cast
):
    make_studies(review, 3)
    page = login_page("reviewer")
    page.goto(f"/r/{review.slug}/screen/title/")
    page.wait_for_selector(f"#screen-panel[data-study]{SETTLED}")
    assert page.inner_text("[data-progress=left]") == "3"
    shown = page.get_attribute("#screen-panel", "data-study")
    page.keyboard.press("e")
    page.wait_for_selector(f"#screen-panel:not([data-study='{shown}']){SETTLED}")
    assert page.inner_text("[data-progress=left]") == "2"
    assert Decision.objects.filter(reviewer=cast["reviewer"]).count() == 1
    page.reload()
    assert page.inner_text("[data-progress=left]") == "2"
    # Another reviewer's decision does not shorten this reviewer's list (two are required).
    context, other = new_page(browser, live_server)
    try:
        log_in(other, "reviewer2")
        other.goto(f"/r/{review.slug}/screen/title/")
        assert other.inner_text("[data-progress=left]") == "3"
    finally:
        context.close()
