"""Stale writes on the protocol page: two owners (or two tabs) edit the same thing.

Each path: both open the editor, the first saves, the second (stale) is refused with 409 showing
the stored value and who wrote it; nothing of the stale write is stored (database and page, for
both users); "Apply mine anyway" then writes it, audited as `<noun>.overwrite` with the
replaced version.
"""

import re

import pytest
from django.test import Client
from django.urls import reverse

from screening.models import (
    AuditEvent,
    Criterion,
    Membership,
    QualityCriterion,
    ResearchQuestion,
    Review,
    SearchRun,
    SearchString,
    Source,
    Stage,
)
from screening.services import protocol as services

from .factories import UserFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def owners(review, cast):
    """Two owners of the review, each with their own browser session."""
    second = UserFactory(username="owner2")
    Membership.objects.create(review=review, user=second, role=Membership.Role.OWNER)
    clients = []
    for user in (cast["owner"], second):
        client = Client()
        client.force_login(user)
        clients.append(client)
    return clients


def url(name, review, *args):
    return reverse(f"screening:{name}", args=[review.slug, *args])


def shown_version(client, address) -> str:
    """The version the editor at `address` carries (what this user saw)."""
    html = client.get(address, **HTMX).content.decode()
    return re.search(r'name="version" value="(\d+)"', html).group(1)


def page_as(client, review) -> str:
    return client.get(url("protocol_detail", review)).content.decode()


def assert_refused(response, *, current: str, by: str = "owner"):
    html = response.content.decode()
    assert response.status_code == 409, html
    assert "data-stale-write" in html and current in html and f"by {by}" in html
    assert 'name="force" value="1"' in html


def force(client, address, data, response):
    """Press "Apply mine anyway": the 409 form re-posts the data with the current version."""
    current = re.search(r'name="version" value="(\d+)"', response.content.decode()).group(1)
    return client.post(address, {**data, "version": current, "force": "1"}, **HTMX)


LIST_ITEMS = [
    ("research-questions", ResearchQuestion, {"code": "RQ1", "text": "Why?", "theme": "T"}),
    ("inclusion", Criterion, {"code": "IC1", "text": "About MLOps"}),
    ("exclusion", Criterion, {"code": "EC1", "text": "Not English"}),
    ("other-reasons", Criterion, {"code": "OR1", "text": "Retracted"}),
    ("quality", QualityCriterion, {"code": "QC1", "text": "Clear aims?"}),
    ("sources", Source, {"name": "ACM"}),
    ("search-strings", SearchString, {"text": '"MLOps"'}),
]


@pytest.mark.parametrize("key,model,values", LIST_ITEMS, ids=[k for k, _, _ in LIST_ITEMS])
def test_stale_protocol_item_edit_is_refused_then_applied_on_request(
    review, cast, owners, key, model, values
):
    spec = services.ORDERED_LISTS[key]
    item = services.protocol_item_create(
        review=review, actor=cast["owner"], spec=spec, values=values
    )
    first, second = owners
    address = url("protocol_item", review, key, item.pk)
    seen_first, seen_second = shown_version(first, address), shown_version(second, address)
    field = spec.fields[-1]  # text (or name): what both change
    prefix = f"edit-{item.pk}-"
    base = {prefix + name: value for name, value in values.items()}

    saved = first.post(address, {**base, prefix + field: "first's", "version": seen_first}, **HTMX)
    assert saved.status_code == 200
    mine = {**base, prefix + field: "second's"}
    refused = second.post(address, {**mine, "version": seen_second}, **HTMX)
    assert_refused(refused, current="first&#x27;s")
    assert getattr(model.objects.get(pk=item.pk), field) == "first's"
    for client in owners:
        html = page_as(client, review)
        assert "first&#x27;s" in html and "second&#x27;s" not in html

    applied = force(second, address, mine, refused)
    assert applied.status_code == 200
    item = model.objects.get(pk=item.pk)
    assert (getattr(item, field), item.version) == ("second's", 3)
    event = AuditEvent.objects.get(action=f"{spec.noun}.overwrite", object_id=str(item.pk))
    assert event.actor.username == "owner2"
    assert (event.before["version"], event.before[field]) == (2, "first's")
    assert (event.after["version"], event.after[field]) == (3, "second's")
    assert "second&#x27;s" in page_as(owners[0], review)


def test_stale_protocol_item_delete_is_refused_then_applied_on_request(review, cast, owners):
    spec = services.ORDERED_LISTS["inclusion"]
    item = services.protocol_item_create(
        review=review, actor=cast["owner"], spec=spec, values={"code": "IC1", "text": "Old"}
    )
    first, second = owners
    seen = re.search(
        rf'/lists/inclusion/{item.pk}/delete/".*?name="version" value="(\d+)"',
        page_as(second, review),
        re.S,
    ).group(1)
    edit = url("protocol_item", review, "inclusion", item.pk)
    first.post(
        edit,
        {f"edit-{item.pk}-code": "IC1", f"edit-{item.pk}-text": "Reworded", "version": seen},
        **HTMX,
    )
    delete = url("protocol_item_delete", review, "inclusion", item.pk)
    refused = second.post(delete, {"version": seen}, **HTMX)
    assert_refused(refused, current="IC1: Reworded")
    assert Criterion.objects.filter(pk=item.pk, text="Reworded").exists()
    assert "Reworded" in page_as(second, review)

    assert force(second, delete, {}, refused).status_code == 200
    assert not Criterion.objects.filter(pk=item.pk).exists()
    event = AuditEvent.objects.get(action="criterion.overwrite")
    assert event.before["version"] == 2 and event.after == {"deleted": True}
    assert "Reworded" not in page_as(first, review)


SETTINGS = [
    ("basics", {"basics-title": "{}", "basics-objectives": ""}, "title"),
    (
        "screening",
        {"screening-screening_mode": "staged", "screening-highlight_include_terms": "{}"},
        "highlight_include_terms",
    ),
    ("quality", {"quality-quality_scale": "yes_no", "quality-quality_threshold": "{}"}, None),
]


@pytest.mark.parametrize("section,template,field", SETTINGS, ids=[s for s, _, _ in SETTINGS])
def test_stale_review_settings_are_refused_then_applied_on_request(
    review, owners, section, template, field
):
    first, second = owners
    address = url("protocol_settings", review, section)
    edit = address + "?edit=1"
    seen_first, seen_second = shown_version(first, edit), shown_version(second, edit)
    values = {"first": "Firsts", "second": "Seconds"}
    if field is None:  # the threshold is a number
        values = {"first": "2", "second": "3"}

    def data(who):
        return {name: value.format(values[who]) for name, value in template.items()}

    assert first.post(address, {**data("first"), "version": seen_first}, **HTMX).status_code == 200
    refused = second.post(address, {**data("second"), "version": seen_second}, **HTMX)
    assert_refused(refused, current=values["first"])
    stored = Review.objects.get(pk=review.pk)
    stored_value = str(getattr(stored, field or "quality_threshold"))
    assert stored_value.startswith(values["first"])
    assert force(second, address, data("second"), refused).status_code == 200
    stored = Review.objects.get(pk=review.pk)
    assert str(getattr(stored, field or "quality_threshold")).startswith(values["second"])
    event = AuditEvent.objects.get(action="review.overwrite")
    assert (event.before["version"], event.after["version"]) == (2, 3)
    assert values["second"] in page_as(first, review)


def test_stale_stage_settings_are_refused_then_applied_on_request(review, owners):
    first, second = owners
    stage = review.stages.get(key="title")
    address = url("protocol_stage", review, stage.pk)
    seen_first, seen_second = shown_version(first, address), shown_version(second, address)
    prefix = f"stage-{stage.pk}-"
    base = {
        prefix + "name": stage.name,
        prefix + "consensus_rule": stage.consensus_rule,
        prefix + "queue_order": stage.queue_order,
        prefix + "route_include": stage.route_include,
        prefix + "route_uncertain": stage.route_uncertain,
        prefix + "route_exclude": stage.route_exclude,
    }
    saved = first.post(
        address, {**base, prefix + "reviewers_required": "3", "version": seen_first}, **HTMX
    )
    assert saved.status_code == 200
    mine = {**base, prefix + "reviewers_required": "1"}
    refused = second.post(address, {**mine, "version": seen_second}, **HTMX)
    assert_refused(refused, current="3 reviewer(s)")
    assert Stage.objects.get(pk=stage.pk).reviewers_required == 3
    assert force(second, address, mine, refused).status_code == 200
    assert Stage.objects.get(pk=stage.pk).reviewers_required == 1
    event = AuditEvent.objects.get(action="stage.overwrite")
    assert (event.before["reviewers_required"], event.before["version"]) == (3, 2)


def test_stale_search_run_is_refused_then_applied_on_request(review, cast, owners):
    lists = services.ORDERED_LISTS
    owner = cast["owner"]
    acm = services.protocol_item_create(
        review=review, actor=owner, spec=lists["sources"], values={"name": "ACM"}
    )
    string = services.protocol_item_create(
        review=review, actor=owner, spec=lists["search-strings"], values={"text": "x"}
    )
    first, second = owners
    address = url("protocol_search_cell", review, string.pk, acm.pk)
    seen_first, seen_second = shown_version(first, address), shown_version(second, address)
    assert seen_first == seen_second == "0"  # no run yet
    day = {"cell-run_on": "2021-07-31"}
    assert (
        first.post(
            address, {**day, "cell-hits_reported": "602", "version": seen_first}, **HTMX
        ).status_code
        == 200
    )
    mine = {**day, "cell-hits_reported": "600"}
    refused = second.post(address, {**mine, "version": seen_second}, **HTMX)
    assert_refused(refused, current="602 hits")
    assert SearchRun.objects.get().hits_reported == 602
    assert "602" in page_as(second, review)
    assert force(second, address, mine, refused).status_code == 200
    run = SearchRun.objects.get()
    assert (run.hits_reported, run.version) == (600, 2)
    event = AuditEvent.objects.get(action="search_run.overwrite")
    assert (event.before["hits_reported"], event.before["version"]) == (602, 1)


def test_editor_reopened_after_invalid_input_keeps_the_version_seen(review, cast, owners):
    """A 422 answer must not quietly upgrade the version the user saw."""
    spec = services.ORDERED_LISTS["inclusion"]
    item = services.protocol_item_create(
        review=review, actor=cast["owner"], spec=spec, values={"code": "IC1", "text": "Old"}
    )
    first, second = owners
    address = url("protocol_item", review, "inclusion", item.pk)
    seen = shown_version(second, address)
    first.post(
        address,
        {f"edit-{item.pk}-code": "IC1", f"edit-{item.pk}-text": "New", "version": seen},
        **HTMX,
    )
    invalid = second.post(
        address, {f"edit-{item.pk}-code": "", f"edit-{item.pk}-text": "x", "version": seen}, **HTMX
    )
    assert invalid.status_code == 422
    assert f'name="version" value="{seen}"' in invalid.content.decode()


def test_stale_write_without_htmx_answers_a_page_that_can_apply_it(review, cast, owners):
    spec = services.ORDERED_LISTS["inclusion"]
    item = services.protocol_item_create(
        review=review, actor=cast["owner"], spec=spec, values={"code": "IC1", "text": "Old"}
    )
    services.protocol_item_update(
        review=review,
        actor=cast["owner"],
        spec=spec,
        item=item,
        values={"code": "IC1", "text": "Newer"},
        seen_version=1,
    )
    address = url("protocol_item", review, "inclusion", item.pk)
    data = {f"edit-{item.pk}-code": "IC1", f"edit-{item.pk}-text": "Mine"}
    refused = owners[1].post(address, {**data, "version": "1"})
    html = refused.content.decode()
    assert refused.status_code == 409 and "<html" in html and "IC1: Newer" in html
    assert Criterion.objects.get(pk=item.pk).text == "Newer"
    applied = owners[1].post(address, {**data, "version": "2", "force": "1"})
    assert applied.status_code == 302
    assert Criterion.objects.get(pk=item.pk).text == "Mine"
