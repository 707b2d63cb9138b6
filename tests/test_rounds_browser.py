"""A search update in Chromium, against a real worker: the owner opens round 2, imports the
Scopus export into it, and the round's diff appears when the worker is done; after a reload,
and for another member, it is the same."""

import pytest
from playwright.sync_api import expect

from screening.models import SearchRound

from .conftest import PASSWORD
from .imports_helpers import media_root_fixture  # noqa: F401 (fixtures are found by name)
from .test_rounds import SCOPUS
from .test_rounds import round_one as round_one  # the fixture, found by name


@pytest.mark.browser
@pytest.mark.worker
def test_open_round_two_import_and_see_the_diff(
    media_root, celery_worker, review, cast, round_one, login_page, browser, live_server, tmp_path
):
    page = login_page("owner")
    page.goto(f"/r/{review.slug}/rounds/")
    page.fill("#id_run_on", "2020-06-01")
    page.get_by_label(f"Scopus: {round_one['string'].text}").fill("286")
    page.click("#round-open-button")
    page.wait_for_url(f"**/r/{review.slug}/rounds/2/")
    search_round = SearchRound.objects.get(review=review, number=2)
    scopus_run = search_round.runs.get(source=round_one["scopus"])
    assert search_round.runs.count() == 1 and scopus_run.hits_reported == 286

    page.set_input_files("#id_files", str(SCOPUS))
    page.select_option("#id_search_run", str(scopus_run.pk))
    with page.expect_navigation():
        page.click("#round-upload-button")
    expect(page.locator("#round-files li")).to_have_count(1)
    # The diff polls itself until the worker has imported and deduplicated the file.
    expect(page.locator('#round-diff-body[data-unfinished="false"]')).to_have_count(
        1, timeout=90_000
    )
    expect(page.locator('[data-count="new"]')).to_contain_text("205 records, 205 new studies")
    page.screenshot(path=str(tmp_path / "round2.png"), full_page=True)

    page.reload()
    expect(page.locator('[data-count="records"]')).to_have_text("286")
    expect(page.locator('[data-count="existing"]')).to_have_text("63")
    expect(page.locator('[data-count="changed"]')).to_have_text("18")
    page.click("#diff-tabs >> text=Changed")
    expect(page.locator("#diff-rows tbody tr")).to_have_count(18)

    viewer = browser.new_context(base_url=live_server.url).new_page()
    viewer.goto("/accounts/login/")
    viewer.fill("#id_username", "viewer")
    viewer.fill("#id_password", PASSWORD)
    viewer.click("button[type=submit]")
    viewer.wait_for_url(lambda url: "/accounts/login/" not in url)
    viewer.goto(f"/r/{review.slug}/rounds/2/")
    expect(viewer.locator('[data-count="new"]')).to_contain_text("205 records")
    expect(viewer.locator("#round-upload-form")).to_have_count(0)
    viewer.context.close()
