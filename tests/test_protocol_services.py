"""Protocol services: the ordered-list mechanism, stages, search runs, team, audit trail."""

import datetime

import pytest
from django.core.exceptions import ValidationError

from screening.models import AuditEvent, Criterion, Membership, Review, SearchRun, Stage
from screening.services import protocol as services

LISTS = services.ORDERED_LISTS


def add(review, owner, key, **values):
    return services.protocol_item_create(review=review, actor=owner, spec=LISTS[key], values=values)


@pytest.mark.parametrize(
    "key,values,noun",
    [
        ("research-questions", {"code": "RQ1", "text": "t", "theme": "x"}, "research_question"),
        ("inclusion", {"code": "IC1", "text": "t"}, "criterion"),
        ("exclusion", {"code": "EC1", "text": "t"}, "criterion"),
        ("other-reasons", {"code": "NOT-FOUND", "text": "t"}, "criterion"),
        ("quality", {"code": "QC1", "text": "t"}, "quality_criterion"),
        ("sources", {"name": "ACM"}, "source"),
        ("search-strings", {"text": '"MLOps"'}, "search_string"),
    ],
)
def test_every_list_creates_updates_moves_deletes_with_audit(review, cast, key, values, noun):
    spec = LISTS[key]
    owner = cast["owner"]
    first = add(review, owner, key, **values)
    second_values = {name: f"{value}-2" for name, value in values.items()}
    second = add(review, owner, key, **second_values)
    assert [item.pk for item in spec.queryset(review)][-2:] == [first.pk, second.pk]
    services.protocol_item_move(review=review, actor=owner, spec=spec, item=second, direction="up")
    order = [item.pk for item in spec.queryset(review)]
    assert order.index(second.pk) < order.index(first.pk)
    updated = {**values, spec.unique: f"{values[spec.unique]}-new"}
    services.protocol_item_update(
        review=review, actor=owner, spec=spec, item=first, values=updated, seen_version=1
    )
    services.protocol_item_delete(
        review=review, actor=owner, spec=spec, item=second, seen_version=1
    )
    positions = [item.position for item in spec.queryset(review)]
    assert positions == list(range(len(positions)))
    actions = set(
        AuditEvent.objects.filter(review=review, actor=owner).values_list("action", flat=True)
    )
    assert {f"{noun}_{verb}" for verb in ("create", "update", "move", "delete")} <= actions
    if spec.filters:
        assert all(item.kind == spec.filters["kind"] for item in spec.queryset(review))


def test_move_at_the_edge_changes_nothing(review, cast):
    ic1 = add(review, cast["owner"], "inclusion", code="IC1", text="a")
    services.protocol_item_move(
        review=review, actor=cast["owner"], spec=LISTS["inclusion"], item=ic1, direction="up"
    )
    assert not AuditEvent.objects.filter(action="criterion_move").exists()


def test_update_without_change_is_not_audited(review, cast):
    ic1 = add(review, cast["owner"], "inclusion", code="IC1", text="a")
    services.protocol_item_update(
        review=review,
        actor=cast["owner"],
        spec=LISTS["inclusion"],
        item=ic1,
        values={"code": "IC1", "text": "a"},
        seen_version=1,
    )
    assert not AuditEvent.objects.filter(action="criterion_update").exists()


def test_service_refuses_a_used_code_even_without_the_form(review, cast):
    add(review, cast["owner"], "inclusion", code="IC1", text="a")
    with pytest.raises(ValidationError, match="already used"):
        add(review, cast["owner"], "exclusion", code="IC1", text="b")
    assert Criterion.objects.filter(review=review, code="IC1").count() == 1


def test_search_run_set_updates_in_place_and_refuses_other_reviews(review, cast):
    owner = cast["owner"]
    source = add(review, owner, "sources", name="ACM")
    string = add(review, owner, "search-strings", text="x")
    day = datetime.date(2021, 7, 31)
    kwargs = dict(review=review, actor=owner, search_string=string, source=source, run_on=day)
    services.search_run_set(hits_reported=5, seen_version=0, **kwargs)
    run = services.search_run_set(hits_reported=6, seen_version=1, **kwargs)
    assert SearchRun.objects.get().pk == run.pk and run.hits_reported == 6
    event = AuditEvent.objects.filter(action="search_run_set").first()
    assert (event.before["hits_reported"], event.after["hits_reported"]) == (5, 6)
    other = Review.objects.create(slug="other", title="Other")
    with pytest.raises(ValidationError, match="belong to this review"):
        services.search_run_set(
            review=other,
            actor=owner,
            search_string=string,
            source=source,
            run_on=day,
            hits_reported=1,
            seen_version=0,
        )


def test_stages_check_finds_loops_and_missing_entry(review):
    stages = list(review.stages.all())
    assert services.stages_check(stages) == []
    stages[2].route_include = "title"
    stages[0].is_entry = False
    problems = services.stages_check(stages)
    assert any("entry stage" in p for p in problems)
    assert any("must lead to a later stage" in p for p in problems)


def test_stage_update_refuses_a_backward_route(review, cast):
    abstract = review.stages.get(key="abstract")
    with pytest.raises(ValidationError, match="later stage"):
        services.stage_update(
            review=review,
            actor=cast["owner"],
            stage=abstract,
            values={"route_include": "title"},
            seen_version=1,
        )
    assert Stage.objects.get(pk=abstract.pk).route_include == "full_text"


def test_team_keeps_an_owner(review, cast):
    owner = Membership.objects.get(review=review, user=cast["owner"])
    with pytest.raises(ValidationError):
        services.member_remove(review=review, actor=cast["owner"], membership=owner)
    with pytest.raises(ValidationError, match="at least one owner"):
        services.member_update(
            review=review, actor=cast["owner"], membership=owner, role="viewer", can_import=False
        )
    services.member_add(review=review, actor=cast["owner"], username="outsider", role="owner")
    services.member_update(
        review=review, actor=cast["owner"], membership=owner, role="viewer", can_import=False
    )
    owner.refresh_from_db()
    assert owner.role == "viewer"


def test_inactive_users_cannot_be_added(review, cast):
    cast["outsider"].is_active = False
    cast["outsider"].save()
    with pytest.raises(ValidationError, match="No active user"):
        services.member_add(review=review, actor=cast["owner"], username="outsider", role="viewer")
