"""In Chromium: the demo owner adds an inclusion criterion and it appears without a reload."""

import io
import json

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.browser


@pytest.fixture
def demo_owner(transactional_db):
    out = io.StringIO()
    call_command("load_demo", "--bare", stdout=out, stderr=io.StringIO())
    data = json.loads(out.getvalue())
    return next(user for user in data["users"] if user["role"] == "owner")


def test_owner_adds_inclusion_criterion_without_reload(demo_owner, login_page):
    from screening.models import Criterion

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
    stored = Criterion.objects.get(review__slug="mlops-slr", code="IC7")
    assert stored.text == "Studies that report MLOps <b>costs</b>"
    page.reload()
    reloaded = page.locator("#list-inclusion tr[data-item]", has_text="IC7")
    assert reloaded.count() == 1 and "<b>costs</b>" in reloaded.inner_text()
    page.evaluate("window.__noReload = 'still here'")

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
    page.wait_for_function(
        "() => document.activeElement && document.activeElement.matches("
        "\"#list-inclusion tr.table-active input[name$='-code']\")"
    )
    page.keyboard.press("Escape")
    code.wait_for(state="detached")
    assert page.evaluate("window.__noReload") == "still here"


def _editor_ready(page, pk: int) -> None:
    """An inline editor is ready once htmx has wired its form up: its first field has the focus."""
    page.wait_for_function(
        "id => document.activeElement && document.activeElement.id === id",
        arg=f"id_edit-{pk}-code",
    )


def test_stale_second_tab_is_refused_then_applied_on_request(demo_owner, login_page, browser):
    from screening.models import AuditEvent, Criterion

    tab_a = login_page(demo_owner["username"], demo_owner["password"])
    tab_a.goto("/r/mlops-slr/protocol/")
    tab_b = tab_a.context.new_page()
    tab_b.goto("/r/mlops-slr/protocol/")
    ic2 = Criterion.objects.get(review__slug="mlops-slr", code="IC2")
    original = ic2.text
    editor = f"#list-inclusion tr.table-active textarea[name='edit-{ic2.pk}-text']"
    for tab in (tab_a, tab_b):
        tab.get_by_role("link", name="Edit inclusion criterion IC2").click()
        _editor_ready(tab, ic2.pk)

    tab_a.locator(editor).fill("Saved in tab A")
    tab_a.locator("#list-inclusion tr.table-active").get_by_role("button", name="Save").click()
    tab_a.locator("#list-inclusion tr[data-item]", has_text="Saved in tab A").wait_for()

    tab_b.locator(editor).fill("Typed in stale tab B")
    tab_b.locator("#list-inclusion tr.table-active").get_by_role("button", name="Save").click()
    warning = tab_b.locator("#stale-list-inclusion [data-stale-write]")
    warning.wait_for()
    assert "Saved in tab A" in warning.locator("[data-stale-current]").inner_text()
    assert "by demo-owner" in warning.inner_text()
    # Nothing typed in tab B is lost: its editor is still open with its text.
    assert tab_b.locator(editor).input_value() == "Typed in stale tab B"
    assert Criterion.objects.get(pk=ic2.pk).text == "Saved in tab A"

    # Reloaded, and as another user: tab A's text is what is stored and shown.
    tab_b.reload()
    assert tab_b.locator("#list-inclusion tr[data-item]", has_text="Saved in tab A").count() == 1
    assert "Typed in stale tab B" not in tab_b.content()
    other = browser.new_context(base_url=tab_a.url.split("/r/")[0]).new_page()
    other.goto("/accounts/login/")
    other.fill("#id_username", "demo-reviewer1")
    other.fill("#id_password", demo_owner["password"])
    other.click("button[type=submit]")
    other.wait_for_url(lambda url: "/accounts/login/" not in url)
    other.goto("/r/mlops-slr/protocol/")
    assert other.locator("#list-inclusion tr", has_text="Saved in tab A").count() == 1
    assert other.locator("#list-inclusion tr", has_text=original[:30]).count() == 0

    # "Apply mine anyway" (Enter: it has the focus) writes tab B's text, audited.
    tab_b.get_by_role("link", name="Edit inclusion criterion IC2").click()
    _editor_ready(tab_b, ic2.pk)
    tab_b.locator(editor).fill("Typed in stale tab B")
    tab_a.locator("#list-inclusion").get_by_role(
        "link", name="Edit inclusion criterion IC2"
    ).click()
    _editor_ready(tab_a, ic2.pk)
    tab_a.locator(editor).fill("Tab A again")
    tab_a.locator("#list-inclusion tr.table-active").get_by_role("button", name="Save").click()
    tab_a.locator("#list-inclusion tr[data-item]", has_text="Tab A again").wait_for()
    tab_b.locator("#list-inclusion tr.table-active").get_by_role("button", name="Save").click()
    apply = tab_b.locator("[data-stale-apply]")
    apply.wait_for()
    # The answer's "Apply mine anyway" takes the focus (not the Save button just pressed).
    tab_b.wait_for_function(
        "() => document.activeElement && document.activeElement.matches('[data-stale-apply]')"
    )
    tab_b.keyboard.press("Enter")
    tab_b.locator("#list-inclusion tr[data-item]", has_text="Typed in stale tab B").wait_for()
    assert Criterion.objects.get(pk=ic2.pk).text == "Typed in stale tab B"
    event = AuditEvent.objects.filter(action="criterion.overwrite").get()
    assert event.before["text"] == "Tab A again" and event.after["text"] == "Typed in stale tab B"
    tab_a.reload()
    assert tab_a.locator("#list-inclusion tr[data-item]", has_text="Typed in stale tab B").count()
    other.reload()
    assert other.locator("#list-inclusion tr", has_text="Typed in stale tab B").count() == 1
    other.context.close()


def test_research_question_count_follows_adds_and_deletes(demo_owner, login_page):
    from screening.models import ResearchQuestion

    page = login_page(demo_owner["username"], demo_owner["password"])
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/r/mlops-slr/protocol/")
    stored = ResearchQuestion.objects.filter(review__slug="mlops-slr").count()
    count = page.locator("#count-research-questions")
    assert count.inner_text() == f"({stored})"
    section = page.locator("#list-research-questions")
    section.get_by_label("Code").fill("RQ9")
    section.get_by_label("Text").fill("What do teams measure?")
    section.get_by_role("button", name="Add research question").click()
    page.locator("#list-research-questions tr[data-item]", has_text="RQ9").wait_for()
    expect_count = f"({stored + 1})"
    page.wait_for_function(
        f"document.getElementById('count-research-questions').innerText === '{expect_count}'"
    )
    assert ResearchQuestion.objects.filter(review__slug="mlops-slr").count() == stored + 1
    page.reload()
    assert page.locator("#count-research-questions").inner_text() == expect_count
    page.get_by_role("button", name="Delete research question RQ9").click()
    page.locator("#list-research-questions tr[data-item]", has_text="RQ9").wait_for(
        state="detached"
    )
    page.wait_for_function(
        f"document.getElementById('count-research-questions').innerText === '({stored})'"
    )
    page.reload()
    assert page.locator("#count-research-questions").inner_text() == f"({stored})"
    assert ResearchQuestion.objects.filter(review__slug="mlops-slr").count() == stored


def test_focus_goes_to_the_next_sensible_field_after_each_protocol_form(demo_owner, login_page):
    from screening.models import Criterion, Review

    page = login_page(demo_owner["username"], demo_owner["password"])
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/r/mlops-slr/protocol/")

    def wait_focus(expected: str):
        page.wait_for_function(
            "expected => { const e = document.activeElement;"
            " return e && e !== document.body && (e.tagName.toLowerCase() + '#' + e.id)"
            " === expected; }",
            arg=expected,
        )

    # Add: the cursor is back in the add form's first field, ready for the next one.
    section = page.locator("#list-exclusion")
    section.get_by_label("Code").fill("EC9")
    section.get_by_label("Text").fill("Tutorials")
    section.get_by_role("button", name="Add exclusion criterion").click()
    page.locator("#list-exclusion tr[data-item]", has_text="EC9").wait_for()
    wait_focus("input#id_new-exclusion-code")
    ec9 = Criterion.objects.get(review__slug="mlops-slr", code="EC9")

    # Invalid add: the invalid field has the focus.
    section.get_by_label("Code").fill("EC9")
    section.get_by_label("Text").fill("again")
    section.get_by_role("button", name="Add exclusion criterion").click()
    page.locator("#list-exclusion .invalid-feedback").wait_for()
    wait_focus("input#id_new-exclusion-code")

    # Edit, save: the saved item's Edit link.
    page.get_by_role("link", name="Edit exclusion criterion EC9").click()
    # The editor opens with the cursor in its first field once htmx has wired its form up.
    _editor_ready(page, ec9.pk)
    text = page.locator(f"textarea[name='edit-{ec9.pk}-text']")
    text.fill("Tutorials and keynotes")
    page.locator("#list-exclusion tr.table-active").get_by_role("button", name="Save").click()
    page.locator("#list-exclusion tr[data-item]", has_text="keynotes").wait_for()
    wait_focus(f"a#edit-exclusion-{ec9.pk}")

    # Escape from an editor: back on its Edit link.
    page.keyboard.press("Enter")
    _editor_ready(page, ec9.pk)
    page.keyboard.press("Escape")
    text.wait_for(state="detached")
    wait_focus(f"a#edit-exclusion-{ec9.pk}")

    # Move up: the focus stays on the moved item's button.
    page.get_by_role("button", name="Move EC9 up").click()
    page.wait_for_function(
        "pk => { const rows = document.querySelectorAll('#list-exclusion tr[data-item]');"
        " return rows[rows.length - 2].dataset.item === pk; }",
        arg=str(ec9.pk),
    )
    wait_focus(f"button#move-exclusion-{ec9.pk}-up")
    rows = page.locator("#list-exclusion tr[data-item]")

    # Delete: the next item's Edit link.
    following = rows.nth(rows.count() - 1).get_attribute("data-item")
    page.get_by_role("button", name="Delete exclusion criterion EC9").click()
    page.locator(f"#list-exclusion tr[data-item='{ec9.pk}']").wait_for(state="detached")
    wait_focus(f"a#edit-exclusion-{following}")
    assert not Criterion.objects.filter(pk=ec9.pk).exists()

    # Settings: after saving, the section's Edit button.
    page.locator("#edit-quality").click()
    page.get_by_label("Exclusion threshold").fill("3")
    page.locator("#quality").get_by_role("button", name="Save").click()
    page.locator("#quality", has_text="total below 3").wait_for()
    wait_focus("a#edit-quality")
    assert str(Review.objects.get(slug="mlops-slr").quality_threshold) == "3.00"
    page.reload()
    assert "total below 3.00" in page.locator("#quality").inner_text()


def test_split_off_message_shows_at_once_and_not_on_the_next_page(transactional_db, login_page):
    from screening.models import DuplicateCandidate, Record, Study
    from screening.services.dedup import candidate_decide, review_deduplicate

    from .dedup_helpers import STROKE, TRIAL, add_batch, paper
    from .factories import review_with_cast

    review, cast = review_with_cast()
    add_batch(review, "ACM", [paper(TRIAL, doi="10.1000/aaa1"), paper(STROKE)])
    add_batch(review, "IEEE", [paper(TRIAL, doi="10.1000/aaa2"), paper(STROKE)])
    review_deduplicate(review=review)
    pair = DuplicateCandidate.objects.get(review=review)
    candidate_decide(review=review, candidate=pair, user=cast["reviewer"], is_duplicate=True)
    record = Record.objects.filter(review=review, title=STROKE).last()
    studies = Study.objects.filter(review=review).count()

    page = login_page("owner")
    page.goto(f"/r/{review.slug}/duplicates/merged/")
    page.evaluate("window.__noReload = 'still here'")
    page.get_by_role("button", name=f"Split record {record.pk} off into its own study").click()
    message = page.locator("main", has_text=f"Record {record.pk} is now study")
    message.wait_for()
    assert page.evaluate("window.__noReload") == "still here"  # shown by the htmx answer
    assert Study.objects.filter(review=review).count() == studies + 1
    page.goto(f"/r/{review.slug}/dashboard/")
    page.locator("main").wait_for()
    assert "is now study" not in page.locator("main").inner_text()
    page.goto(f"/r/{review.slug}/duplicates/merged/")
    assert "is now study" not in page.locator("main").inner_text()
