"""In Chromium: the demo owner adds an inclusion criterion and it appears without a reload."""

import io
import json

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.browser


@pytest.fixture
def demo_owner(transactional_db):
    out = io.StringIO()
    call_command("load_demo", stdout=out, stderr=io.StringIO())
    data = json.loads(out.getvalue())
    return next(user for user in data["users"] if user["role"] == "owner")


def test_owner_adds_inclusion_criterion_without_reload(demo_owner, login_page):
    page = login_page(demo_owner["username"], demo_owner["password"])
    page.goto("/r/mlops-slr/protocol/")
    assert page.locator("#table1-grand-total").inner_text() == "1,905"
    # A marker on window survives htmx swaps but not a full page load.
    page.evaluate("window.__noReload = 'still here'")
    section = page.locator("#list-inclusion")
    section.get_by_label("Code").fill("IC7")
    section.get_by_label("Text").fill("Studies that report MLOps <b>costs</b>")
    section.get_by_role("button", name="Add inclusion criterion").click()
    row = page.locator("#list-inclusion tr[data-item]", has_text="IC7")
    row.wait_for()
    assert "<b>costs</b>" in row.inner_text()  # shown as text, never as markup
    assert page.evaluate("window.__noReload") == "still here"

    # A duplicate code is refused inline, with the message, and the list is unchanged.
    section = page.locator("#list-inclusion")
    section.get_by_label("Code").fill("IC1")
    section.get_by_label("Text").fill("again")
    section.get_by_role("button", name="Add inclusion criterion").click()
    page.locator("#list-inclusion .invalid-feedback", has_text="already used").wait_for()
    assert page.locator("#list-inclusion tr[data-item]").count() == 7
    assert page.evaluate("window.__noReload") == "still here"

    # Edit opens an inline editor with the cursor in it; Escape closes it, still no reload.
    page.get_by_role("link", name="Edit inclusion criterion IC2").click()
    code = page.locator("#list-inclusion tr.table-active input[name$='-code']")
    code.wait_for()
    assert code.evaluate("element => element === document.activeElement")
    page.keyboard.press("Escape")
    code.wait_for(state="detached")
    assert page.evaluate("window.__noReload") == "still here"
