"""Writes to a review's protocol. Every change is atomic and leaves an audit event.

The protocol's ordered lists (research questions, inclusion / exclusion / other criteria,
quality criteria, sources, search strings) share one mechanism: an `OrderedList` says which
model, which rows and which fields; `protocol_item_create/update/delete/move` do the rest and
audit as `<noun>_<verb>` (criterion_create, source_move ...).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Max

from ..models import (
    AuditEvent,
    Criterion,
    Decision,
    Membership,
    QualityCriterion,
    ResearchQuestion,
    Review,
    SearchRound,
    SearchRun,
    SearchString,
    Source,
    Stage,
    Study,
)
from . import backup
from .audit import audit_event_record
from .reviews import stages_default
from .screening import adjudicator_revoke, stage_progress_recount
from .stale import version_check

PROTOCOL_FORMAT = "slrweb-protocol"

# The items of the protocol's ordered lists, and every row edited with a version check.
ProtocolItem = ResearchQuestion | Criterion | QualityCriterion | Source | SearchString
Versioned = ProtocolItem | Review | Stage | SearchRun
ItemT = TypeVar("ItemT", ResearchQuestion, Criterion, QualityCriterion, Source, SearchString)
VersionedT = TypeVar("VersionedT", bound=Versioned)
Snapshot = dict[str, Any]


def _criterion_in_use(item: Criterion) -> str | None:
    used = item.decisions.count() + item.resolutions.count()
    if used:
        return f"{item.code} is given as a reason in {used} decision(s) and cannot be deleted."
    return None


def _quality_criterion_in_use(item: QualityCriterion) -> str | None:
    if item.answers.exists() or item.consensus.exists():
        return f"{item.code} already has quality answers and cannot be deleted."
    return None


def _source_in_use(item: Source) -> str | None:
    if item.batches.exists():
        return f"Records were imported from {item.name}; it cannot be deleted."
    return None


def _search_string_in_use(item: SearchString) -> str | None:
    if SearchRun.objects.filter(search_string=item, batches__isnull=False).exists():
        return "Records were imported for a run of this search string; it cannot be deleted."
    return None


@dataclass(frozen=True)
class OrderedList(Generic[ItemT]):
    """One ordered list of the protocol, edited inline on the protocol page."""

    key: str  # URL segment and element id
    noun: str  # audit actions are f"{noun}_{verb}"
    title: str
    model: type[ItemT]
    fields: tuple[str, ...]
    unique: str  # the field unique within a review
    filters: dict[str, str] = field(default_factory=dict)
    in_use: Callable[[ItemT], str | None] | None = None
    item_label: str = "item"

    def queryset(self, review: Review) -> models.QuerySet[ItemT]:
        return self.model._default_manager.filter(review=review, **self.filters).order_by(
            "position", "id"
        )

    def snapshot(self, item: ItemT) -> Snapshot:
        data = {name: getattr(item, name) for name in ("id", *self.filters, *self.fields)}
        data["position"] = item.position
        data["version"] = item.version
        return data

    def describe(self, item: ItemT) -> str:
        """The item as a reader sees it, e.g. "IC1: Studies on MLOps"."""
        return ": ".join(str(getattr(item, name)) for name in self.fields if getattr(item, name))


_ORDERED_LISTS: list[OrderedList[Any]] = [
    OrderedList(
        "research-questions",
        "research_question",
        "Research questions",
        ResearchQuestion,
        ("code", "text", "theme"),
        "code",
        item_label="research question",
    ),
    OrderedList(
        "inclusion",
        "criterion",
        "Inclusion criteria",
        Criterion,
        ("code", "text"),
        "code",
        {"kind": Criterion.Kind.INCLUSION},
        _criterion_in_use,
        "inclusion criterion",
    ),
    OrderedList(
        "exclusion",
        "criterion",
        "Exclusion criteria",
        Criterion,
        ("code", "text"),
        "code",
        {"kind": Criterion.Kind.EXCLUSION},
        _criterion_in_use,
        "exclusion criterion",
    ),
    OrderedList(
        "other-reasons",
        "criterion",
        "Other full-text exclusion reasons",
        Criterion,
        ("code", "text"),
        "code",
        {"kind": Criterion.Kind.OTHER},
        _criterion_in_use,
        "reason",
    ),
    OrderedList(
        "quality",
        "quality_criterion",
        "Quality criteria",
        QualityCriterion,
        ("code", "text"),
        "code",
        in_use=_quality_criterion_in_use,
        item_label="quality criterion",
    ),
    OrderedList(
        "sources",
        "source",
        "Sources (digital libraries)",
        Source,
        ("name",),
        "name",
        in_use=_source_in_use,
        item_label="source",
    ),
    OrderedList(
        "search-strings",
        "search_string",
        "Search strings",
        SearchString,
        ("text",),
        "text",
        in_use=_search_string_in_use,
        item_label="search string",
    ),
]
ORDERED_LISTS: dict[str, OrderedList[Any]] = {spec.key: spec for spec in _ORDERED_LISTS}


def _unique_clash(
    spec: OrderedList[Any], review: Review, value: object, exclude_pk: int | None = None
) -> ValidationError | None:
    """The message for a value already used in the review (criterion codes span all kinds)."""
    clash = spec.model._default_manager.filter(review=review, **{spec.unique: value})
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        return ValidationError({spec.unique: f"{value!r} is already used in this review."})
    return None


def _stale_check(
    *,
    review: Review,
    obj: Versioned,
    seen_version: int | None,
    force: bool,
    what: str,
    current: Callable[[], str],
) -> bool:
    """Refuse a write based on an older version of `obj` (see `services.stale`).

    Returns whether this is a forced write (the user was shown the newer version in the 409
    answer and chose to apply theirs anyway): the caller audits it as `<noun>.overwrite`.
    `current` renders the stored value only when needed.
    """
    if force:
        return True
    if (seen_version or 0) != obj.version:
        last = (
            AuditEvent.objects.filter(
                review=review, object_type=obj._meta.model_name, object_id=str(obj.pk)
            )
            .select_related("actor")
            .first()
        )
        version_check(
            stored_version=obj.version,
            seen_version=seen_version,
            force=False,
            what=what,
            current=current(),
            by=last.actor.get_username() if last and last.actor else "",
            at=last.created_at if last else None,
        )
    return False


def _save_audited(
    *,
    review: Review,
    actor: User,
    obj: VersionedT,
    noun: str,
    verb: str,
    forced: bool,
    before: Snapshot | None,
    snapshot: Callable[[VersionedT], Snapshot],
) -> None:
    """Store an edited row one version up, audited as `<noun>_<verb>` (forced: `.overwrite`)."""
    obj.version += 1
    obj.save()
    audit_event_record(
        review=review,
        actor=actor,
        action=f"{noun}.overwrite" if forced else f"{noun}_{verb}",
        obj=obj,
        before=before,
        after=snapshot(obj),
    )


@transaction.atomic
def protocol_item_create(
    *, review: Review, actor: User, spec: OrderedList[ItemT], values: dict[str, Any]
) -> ItemT:
    """Append an item at the end of its list."""
    values = {name: values[name] for name in spec.fields}
    error = _unique_clash(spec, review, values[spec.unique])
    if error:
        raise error
    queryset = spec.queryset(review).select_for_update()
    last = queryset.aggregate(last=Max("position"))["last"]
    try:
        with transaction.atomic():
            item = spec.model._default_manager.create(
                review=review,
                position=0 if last is None else last + 1,
                **spec.filters,
                **values,
            )
    except IntegrityError as exc:
        raise ValidationError({spec.unique: "This value is already used in this review."}) from exc
    audit_event_record(
        review=review,
        actor=actor,
        action=f"{spec.noun}_create",
        obj=item,
        after=spec.snapshot(item),
    )
    return item


def _item_stale_check(
    *, review: Review, spec: OrderedList[ItemT], item: ItemT, seen_version: int | None, force: bool
) -> bool:
    return _stale_check(
        review=review,
        obj=item,
        seen_version=seen_version,
        force=force,
        what=f"the {spec.item_label} {getattr(item, spec.unique)}",
        current=lambda: spec.describe(item),
    )


@transaction.atomic
def protocol_item_update(
    *,
    review: Review,
    actor: User,
    spec: OrderedList[ItemT],
    item: ItemT,
    values: dict[str, Any],
    seen_version: int | None,
    force: bool = False,
) -> ItemT:
    """Change an item; refused (`StaleWrite`) when it changed since the user opened it."""
    item = spec.queryset(review).select_for_update().get(pk=item.pk)
    overwrite = _item_stale_check(
        review=review, spec=spec, item=item, seen_version=seen_version, force=force
    )
    values = {name: values[name] for name in spec.fields}
    error = _unique_clash(spec, review, values[spec.unique], exclude_pk=item.pk)
    if error:
        raise error
    before = spec.snapshot(item)
    if {name: getattr(item, name) for name in values} == values and not overwrite:
        return item
    for name, value in values.items():
        setattr(item, name, value)
    _save_audited(
        review=review,
        actor=actor,
        obj=item,
        noun=spec.noun,
        verb="update",
        forced=overwrite,
        before=before,
        snapshot=spec.snapshot,
    )
    return item


@transaction.atomic
def protocol_item_delete(
    *,
    review: Review,
    actor: User,
    spec: OrderedList[ItemT],
    item: ItemT,
    seen_version: int | None,
    force: bool = False,
) -> None:
    """Delete an item; refused when it is in use, or changed since the user saw it."""
    item = spec.queryset(review).select_for_update().get(pk=item.pk)
    overwrite = _item_stale_check(
        review=review, spec=spec, item=item, seen_version=seen_version, force=force
    )
    if spec.in_use is not None:
        message = spec.in_use(item)
        if message:
            raise ValidationError(message)
    audit_event_record(
        review=review,
        actor=actor,
        action=f"{spec.noun}.overwrite" if overwrite else f"{spec.noun}_delete",
        obj=item,
        before=spec.snapshot(item),
        after={"deleted": True} if overwrite else None,
    )
    item.delete()
    _renumber(list(spec.queryset(review)))


def _renumber(items: list[ItemT]) -> None:
    changed: list[ItemT] = []
    for position, item in enumerate(items):
        if item.position != position:
            item.position = position
            changed.append(item)
    if changed:
        type(changed[0])._default_manager.bulk_update(changed, ["position"])


@transaction.atomic
def protocol_item_move(
    *, review: Review, actor: User, spec: OrderedList[ItemT], item: ItemT, direction: str
) -> ItemT:
    """Move an item one place up or down; positions are renumbered 0..n-1."""
    if direction not in ("up", "down"):
        raise ValidationError("Move up or down.")
    items = list(spec.queryset(review).select_for_update())
    index = next((i for i, other in enumerate(items) if other.pk == item.pk), None)
    if index is None:
        raise ValidationError("This item is not in the list.")
    target = index - 1 if direction == "up" else index + 1
    if not 0 <= target < len(items):
        return items[index]
    before = [other.pk for other in items]
    items[index], items[target] = items[target], items[index]
    _renumber(items)
    audit_event_record(
        review=review,
        actor=actor,
        action=f"{spec.noun}_move",
        obj=items[target],
        before={"order": before},
        after={"order": [other.pk for other in items]},
    )
    return items[target]


# ----- review-level settings -------------------------------------------------------------

REVIEW_SETTINGS = {
    "basics": ("title", "objectives"),
    "screening": (
        "screening_mode",
        "blind_mode",
        "highlight_include_terms",
        "highlight_exclude_terms",
    ),
    "quality": ("quality_scale", "quality_threshold"),
}


def _review_field(name: str) -> models.Field[Any, Any]:
    model_field = Review._meta.get_field(name)
    if not isinstance(model_field, models.Field):
        raise ValueError(f"{name!r} is not a setting of the review")
    return model_field


def _review_snapshot(review: Review, names: list[str]) -> Snapshot:
    return {name: backup.json_value(_review_field(name), getattr(review, name)) for name in names}


def _review_describe(review: Review, names: list[str]) -> str:
    """The stored values of these settings, as the protocol page shows them."""
    parts: list[str] = []
    for name in names:
        model_field = _review_field(name)
        value = getattr(review, name)
        if model_field.choices:
            value = getattr(review, f"get_{name}_display")()
        elif isinstance(value, bool):
            value = "on" if value else "off"
        elif value in (None, ""):
            value = "none"
        parts.append(f"{model_field.verbose_name}: {value}")
    return "; ".join(parts)


@transaction.atomic
def review_update(
    *,
    review: Review,
    actor: User,
    values: dict[str, Any],
    seen_version: int | None,
    force: bool = False,
) -> Review:
    """Change review-level protocol settings. A new screening mode rebuilds the stages, which
    is only allowed while no decision exists. Refused (`StaleWrite`) when the review's settings
    changed since the user opened the form."""
    review = Review.objects.select_for_update().get(pk=review.pk)
    names = [name for name in values if name in {n for v in REVIEW_SETTINGS.values() for n in v}]
    overwrite = _stale_check(
        review=review,
        obj=review,
        seen_version=seen_version,
        force=force,
        what="the review's settings",
        current=lambda: _review_describe(review, names),
    )
    before = _review_snapshot(review, names)
    mode_changed = "screening_mode" in values and values["screening_mode"] != review.screening_mode
    for name in names:
        setattr(review, name, values[name])
    review.full_clean(exclude=["slug", "created_by"])
    review.save()
    review.refresh_from_db()  # the stored values (e.g. 2.50 for a threshold typed as 2.5)
    if mode_changed:
        stages_rebuild(review=review, actor=actor)
    after = _review_snapshot(review, names)
    changed = [name for name in names if before[name] != after[name]]
    if changed or overwrite:
        Review.objects.filter(pk=review.pk).update(version=models.F("version") + 1)
        review.refresh_from_db(fields=["version"])
        audit_event_record(
            review=review,
            actor=actor,
            action="review.overwrite" if overwrite else "review_update",
            obj=review,
            before={**{name: before[name] for name in changed}, "version": review.version - 1},
            after={**{name: after[name] for name in changed}, "version": review.version},
        )
    return review


def stages_rebuild(*, review: Review, actor: User) -> list[Stage]:
    """Replace the stages by the defaults of the review's screening mode (no decision yet)."""
    if Decision.objects.filter(review=review).exists():
        raise ValidationError(
            "Screening has started (decisions exist): the screening mode can no longer change."
        )
    before = [_stage_snapshot(stage) for stage in review.stages.all()]
    review.stages.all().delete()
    stages = [
        Stage.objects.create(review=review, **spec)
        for spec in stages_default(mode=review.screening_mode)
    ]
    entry = next(stage for stage in stages if stage.is_entry)
    # Studies imported before the switch wait in the new entry stage.
    Study.objects.filter(review=review, outcome=Study.Outcome.SCREENING).update(current_stage=entry)
    audit_event_record(
        review=review,
        actor=actor,
        action="stage_rebuild",
        obj=review,
        before=before,
        after=[_stage_snapshot(stage) for stage in stages],
    )
    return stages


# ----- stages ----------------------------------------------------------------------------

STAGE_FIELDS = (
    "name",
    "reviewers_required",
    "consensus_rule",
    "reasons_required",
    "queue_order",
    "parties_may_resolve",
    "route_include",
    "route_uncertain",
    "route_exclude",
)
ROUTES = ("route_include", "route_uncertain", "route_exclude")


def _stage_snapshot(stage: Stage) -> Snapshot:
    return {name: getattr(stage, name) for name in ("id", "key", "kind", *STAGE_FIELDS, "version")}


def _stage_describe(stage: Stage) -> str:
    return (
        f"{stage.name}: {stage.reviewers_required} reviewer(s), "
        f"{stage.get_consensus_rule_display()}, reasons "
        f"{'required' if stage.reasons_required else 'optional'}, "
        f"{stage.get_queue_order_display()}; include -> {stage.route_include}, "
        f"uncertain -> {stage.route_uncertain}, exclude -> {stage.route_exclude}"
    )


def stage_route_choices(*, stage: Stage, stages: list[Stage]) -> list[tuple[str, str]]:
    """Where a stage may send a study: a later stage (no loops) or a final outcome."""
    later = [(s.key, s.name) for s in stages if s.position > stage.position]
    return later + [(Stage.INCLUDED, "Included (final)"), (Stage.EXCLUDED, "Excluded (final)")]


def stages_check(stages: list[Stage]) -> list[str]:
    """Problems of a set of stages: one entry stage, routes to later stages or final outcomes."""
    problems: list[str] = []
    entries = [s for s in stages if s.is_entry]
    if len(entries) != 1:
        problems.append(f"Exactly one stage must be the entry stage ({len(entries)} found).")
    positions = {s.key: s.position for s in stages}
    for stage in stages:
        for route in ROUTES:
            target = getattr(stage, route)
            if target in (Stage.INCLUDED, Stage.EXCLUDED):
                continue
            if target not in positions:
                problems.append(f"Stage {stage.key}: {route} names unknown stage {target!r}.")
            elif positions[target] <= stage.position:
                problems.append(f"Stage {stage.key}: {route} must lead to a later stage.")
    return problems


@transaction.atomic
def stage_update(
    *,
    review: Review,
    actor: User,
    stage: Stage,
    values: dict[str, Any],
    seen_version: int | None,
    force: bool = False,
) -> Stage:
    """Change a stage's settings; refused (`StaleWrite`) when it changed since the user saw it."""
    stage = Stage.objects.select_for_update().get(pk=stage.pk, review=review)
    overwrite = _stale_check(
        review=review,
        obj=stage,
        seen_version=seen_version,
        force=force,
        what=f"the settings of {stage.name}",
        current=lambda: _stage_describe(stage),
    )
    before = _stage_snapshot(stage)
    for name in STAGE_FIELDS:
        if name in values:
            setattr(stage, name, values[name])
    stages = [stage if s.pk == stage.pk else s for s in review.stages.all()]
    problems = stages_check(stages)
    if problems:
        raise ValidationError(problems)
    if _stage_snapshot(stage) == before and not overwrite:
        return stage
    _save_audited(
        review=review,
        actor=actor,
        obj=stage,
        noun="stage",
        verb="update",
        forced=overwrite,
        before=before,
        snapshot=_stage_snapshot,
    )
    if stage.reviewers_required != before["reviewers_required"]:
        # Which studies count as full changed: the triggers' counts follow by a recount (the
        # stage is locked above, so no decision is counted meanwhile).
        stage_progress_recount(stage=stage)
    return stage


# ----- search runs (Table 1) -------------------------------------------------------------


def _run_snapshot(run: SearchRun) -> Snapshot:
    return {
        "id": run.pk,
        "search_string": run.search_string.text,
        "source": run.source.name,
        "run_on": run.run_on.isoformat() if run.run_on else None,
        "hits_reported": run.hits_reported,
        "note": run.note,
        "version": run.version,
    }


@transaction.atomic
def search_run_set(
    *,
    review: Review,
    actor: User,
    search_string: SearchString,
    source: Source,
    run_on: datetime.date | None,
    hits_reported: int | None,
    note: str = "",
    seen_version: int | None,
    force: bool = False,
) -> SearchRun | None:
    """Set the hits a library reported for a string on a date; None removes that run.

    `seen_version` is the version of that run the user saw (0: none); a run written since is
    not overwritten unless `force` (`StaleWrite`)."""
    if search_string.review_id != review.pk or source.review_id != review.pk:
        raise ValidationError("The search string and the source must belong to this review.")
    if hits_reported is not None and hits_reported < 0:
        raise ValidationError("Hits cannot be negative.")
    run = (
        SearchRun.objects.select_for_update()
        .filter(search_string=search_string, source=source, run_on=run_on)
        .first()
    )
    where = f"the hits of this search string in {source.name}" + (
        f" on {run_on.isoformat()}" if run_on else ""
    )
    overwrite = _stale_check(
        review=review,
        obj=run or SearchRun(version=0),
        seen_version=seen_version,
        force=force,
        what=where,
        current=lambda: (
            f"{run.hits_reported:,} hits" + (f" ({run.note})" if run.note else "")
            if run
            else "no run recorded"
        ),
    )
    before = _run_snapshot(run) if run else None
    if hits_reported is None:
        if run is None:
            return None
        if run.batches.exists():
            raise ValidationError("Records were imported for this run; it cannot be removed.")
        audit_event_record(
            review=review,
            actor=actor,
            action="search_run.overwrite" if overwrite else "search_run_delete",
            obj=run,
            before=before,
            after={"deleted": True} if overwrite else None,
        )
        run.delete()
        return None
    if run is None:
        run = SearchRun(
            review=review, search_string=search_string, source=source, run_on=run_on, version=0
        )
    elif (run.hits_reported, run.note) == (hits_reported, note) and not overwrite:
        return run
    run.hits_reported = hits_reported
    run.note = note
    _save_audited(
        review=review,
        actor=actor,
        obj=run,
        noun="search_run",
        verb="set",
        forced=overwrite,
        before=before,
        snapshot=_run_snapshot,
    )
    return run


# ----- team ------------------------------------------------------------------------------


def _member_snapshot(membership: Membership) -> Snapshot:
    return {
        "user": membership.user.get_username(),
        "role": membership.role,
        "can_import": membership.can_import,
    }


def _owners_left(review: Review, without: Membership) -> int:
    return (
        Membership.objects.filter(review=review, role=Membership.Role.OWNER)
        .exclude(pk=without.pk)
        .count()
    )


@transaction.atomic
def member_add(*, review: Review, actor: User, username: str, role: str) -> Membership:
    """Add an account to the team without asking it: server-side only (the demo review's
    team, tests). No web page calls it: people join by accepting an invitation."""
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ValidationError({"username": f"No active user named {username!r}."})
    if Membership.objects.filter(review=review, user=user).exists():
        raise ValidationError({"username": f"{username} is already in the team."})
    membership = Membership.objects.create(
        review=review, user=user, role=role, can_import=role != Membership.Role.VIEWER
    )
    audit_event_record(
        review=review,
        actor=actor,
        action="member_add",
        obj=membership,
        after=_member_snapshot(membership),
    )
    return membership


@transaction.atomic
def member_update(
    *, review: Review, actor: User, membership: Membership, role: str, can_import: bool
) -> Membership:
    # Lock the owners so two owners demoting each other at once cannot leave none.
    list(Membership.objects.select_for_update().filter(review=review, role=Membership.Role.OWNER))
    membership = Membership.objects.select_related("user").get(pk=membership.pk, review=review)
    if role == Membership.Role.VIEWER and can_import:
        raise ValidationError(
            f"{membership.user.get_username()} cannot be a viewer who may import: viewers only "
            "read. Untick “may import”, or make them a reviewer."
        )
    if (
        membership.role == Membership.Role.OWNER
        and role != Membership.Role.OWNER
        and not _owners_left(review, membership)
    ):
        raise ValidationError("A review needs at least one owner: make someone else owner first.")
    before = _member_snapshot(membership)
    membership.role = role
    membership.can_import = can_import
    membership.save(update_fields=["role", "can_import"])
    if role == Membership.Role.VIEWER:
        adjudicator_revoke(review=review, user=membership.user, by=actor, why="demoted to viewer")
    after = _member_snapshot(membership)
    if after != before:
        audit_event_record(
            review=review,
            actor=actor,
            action="member_update",
            obj=membership,
            before=before,
            after=after,
        )
    return membership


@transaction.atomic
def member_remove(*, review: Review, actor: User, membership: Membership) -> None:
    list(Membership.objects.select_for_update().filter(review=review, role=Membership.Role.OWNER))
    membership = Membership.objects.select_related("user").get(pk=membership.pk, review=review)
    if membership.role == Membership.Role.OWNER and not _owners_left(review, membership):
        raise ValidationError("The last owner cannot be removed.")
    audit_event_record(
        review=review,
        actor=actor,
        action="member_remove",
        obj=membership,
        before=_member_snapshot(membership),
    )
    adjudicator_revoke(review=review, user=membership.user, by=actor, why="removed from the team")
    membership.delete()


# ----- protocol export / import ----------------------------------------------------------


def protocol_export(*, review: Review) -> Snapshot:
    """The protocol as JSON: settings, stages, criteria, RQs, QCs, sources, strings, runs."""
    review = Review.objects.get(pk=review.pk)
    data: Snapshot = {"format": PROTOCOL_FORMAT, "version": backup.VERSION}
    data.update(backup.tables_dump(review=review, tables=backup.PROTOCOL_TABLES))
    return data


def protocol_import(*, review: Review, actor: User, data: Any) -> Review:
    """Replace the protocol of a review that has no imported records yet (all or nothing)."""
    try:
        with transaction.atomic():
            review = Review.objects.select_for_update().get(pk=review.pk)
            if review.records.exists() or review.batches.exists() or review.studies.exists():
                raise ValidationError(
                    "This review already has imports: its protocol can no longer be replaced."
                )
            try:
                backup.header_check(data, PROTOCOL_FORMAT)
                before = protocol_export(review=review)
                for model in (
                    SearchRun,
                    SearchRound,
                    SearchString,
                    Source,
                    Stage,
                    QualityCriterion,
                ):
                    model.objects.filter(review=review).delete()
                Criterion.objects.filter(review=review).delete()
                ResearchQuestion.objects.filter(review=review).delete()
                review.version += 1  # forms opened before the import are stale
                backup.review_settings_apply(review=review, settings=data["protocol"]["review"])
                backup.tables_load(
                    review=review, data=data, tables=backup.PROTOCOL_TABLES, create_users=False
                )
            except (KeyError, TypeError, ValueError, AttributeError) as error:
                raise ValidationError(f"This file is not a valid protocol: {error}") from error
            except backup.BackupRefused as error:
                raise ValidationError(f"This file is not a valid protocol: {error}") from error
            problems = stages_check(list(review.stages.all()))
            if problems:
                raise ValidationError(["This file is not a valid protocol:", *problems])
            audit_event_record(
                review=review,
                actor=actor,
                action="protocol_import",
                obj=review,
                before=before,
                after=protocol_export(review=review),
            )
    except IntegrityError as error:
        raise ValidationError(f"This file breaks a rule of the database: {error}") from error
    return review


# ----- the demo review ---------------------------------------------------------------------

DEMO_SLUG = "mlops-slr"
DEMO_RUN_DATE = datetime.date(2021, 7, 31)
DEMO_USERS = [
    ("demo-owner", Membership.Role.OWNER),
    ("demo-reviewer1", Membership.Role.REVIEWER),
    ("demo-reviewer2", Membership.Role.REVIEWER),
]


@transaction.atomic
def demo_review_load(*, seed: dict[str, Any], password: str) -> tuple[Review, list[dict[str, Any]]]:
    """Create the seed review and its team once; later calls leave both as they are.

    Returns the review and, per demo account, its username, role and the password when it
    still works (None when somebody changed it: it is never reset behind their back).
    """
    user_model = get_user_model()
    users: list[tuple[User, Membership.Role]] = []
    for username, role in DEMO_USERS:
        user, created = user_model.objects.get_or_create(username=username)
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
        users.append((user, role))
    review = Review.objects.filter(slug=DEMO_SLUG).first()
    if review is None:
        review = _demo_review_create(seed=seed, owner=users[0][0])
        for user, role in users[1:]:
            member_add(review=review, actor=users[0][0], username=user.username, role=role)
    roles = dict(review.memberships.values_list("user__username", "role"))
    accounts = [
        {
            "username": user.username,
            "password": password if user.check_password(password) else None,
            "role": roles.get(user.username),
        }
        for user, _ in users
    ]
    return review, accounts


def _demo_review_create(*, seed: dict[str, Any], owner: User) -> Review:
    from .reviews import review_create

    review = review_create(
        slug=DEMO_SLUG, title=seed["title"], owner=owner, objectives=seed.get("method", "")
    )
    for rq in seed["research_questions"]:
        protocol_item_create(
            review=review, actor=owner, spec=ORDERED_LISTS["research-questions"], values=rq
        )
    for key, items in (
        ("inclusion", seed["inclusion_criteria"]),
        ("exclusion", seed["exclusion_criteria"]),
        ("quality", seed["quality_criteria"]["criteria"]),
    ):
        for item in items:
            protocol_item_create(review=review, actor=owner, spec=ORDERED_LISTS[key], values=item)
    sources = {
        name: protocol_item_create(
            review=review, actor=owner, spec=ORDERED_LISTS["sources"], values={"name": name}
        )
        for name in seed["sources"]
    }
    for row in seed["search_strings_table1"]:
        string = protocol_item_create(
            review=review,
            actor=owner,
            spec=ORDERED_LISTS["search-strings"],
            values={"text": row["string"]},
        )
        for source_name, hits in row["hits"].items():
            search_run_set(
                search_string=string,
                source=sources[source_name],
                run_on=DEMO_RUN_DATE,
                hits_reported=hits,
                seen_version=0,
                review=review,
                actor=owner,
            )
    return review
