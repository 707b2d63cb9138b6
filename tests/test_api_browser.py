"""In Chromium: a reviewer makes an API token, a script reads with it, the reviewer revokes it."""

import pytest
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from screening.models import ApiToken

from .factories import review_with_cast

pytestmark = pytest.mark.browser


@pytest.fixture
def review(transactional_db):
    # The live server runs in this process: loading the URLconf here (it imports every view
    # module, scikit-learn included) keeps the browser's first page inside its timeout.
    reverse("screening:review_list")
    return review_with_cast()[0]


def test_reviewer_makes_uses_and_revokes_a_token(review, login_page):
    page = login_page("reviewer")
    page.goto(f"/r/{review.slug}/protocol/")
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("Shiny app")
    page.get_by_role("button", name="Create token").click()
    raw = page.locator("#api-token-raw").input_value()
    assert raw.startswith("slrw_")
    expect(page.locator("#api-token-list tr", has_text="Shiny app")).to_contain_text("live")

    script = Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    answer = script.get(f"/api/reviews/{review.slug}", **headers)
    assert (answer.status_code, answer.json()["role"]) == (200, "reviewer")

    page.reload()
    expect(page.locator("#api-token-raw")).to_have_count(0)
    expect(page.locator("#api-token-list tr", has_text="Shiny app")).not_to_contain_text("never")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#api-token-list tr", has_text="Shiny app").get_by_role(
        "button", name="Revoke"
    ).click()
    expect(page.locator("#api-token-list tr", has_text="Shiny app")).to_contain_text("revoked")
    assert ApiToken.objects.get(name="Shiny app").revoked_at is not None
    assert script.get(f"/api/reviews/{review.slug}", **headers).status_code == 401
