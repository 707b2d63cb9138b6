"""Helpers for the screening tests: studies created straight through the ORM."""

from screening.models import Criterion, Stage, Study, StudyPriority


def stage(review, key="title") -> Stage:
    return Stage.objects.get(review=review, key=key)


def make_studies(review, n, *, stage_key="title", **fields) -> list[Study]:
    """`n` studies waiting in the stage; with `priority=`, all ranked there at that value."""
    current = stage(review, stage_key)
    studies = [
        Study.objects.create(
            review=review,
            title=fields.get("title", f"Study number {i}"),
            abstract=fields.get("abstract", f"Abstract of study {i}."),
            venue=fields.get("venue", "ICSE"),
            year=fields.get("year", 2021),
            current_stage=current,
        )
        for i in range(n)
    ]
    if fields.get("priority") is not None:
        for study in studies:
            priority_set(study, fields["priority"])
    return studies


def priority_set(study, value, *, stage=None) -> None:
    """Rank a study in a stage's queue (default: its current stage), as a ranking write does."""
    stage_id = stage.pk if stage is not None else study.current_stage_id
    StudyPriority.objects.update_or_create(
        study_id=study.pk, defaults={"stage_id": stage_id, "priority": value}
    )


def priority_of(study, *, stage=None) -> float | None:
    """The stored priority of a study in a stage's queue (default: its current stage), or None
    when it is unranked there."""
    pk = getattr(study, "pk", study)
    if stage is None:
        stage = Study.objects.get(pk=pk).current_stage
    row = StudyPriority.objects.filter(study_id=pk, stage=stage).first()
    return row.priority if row is not None else None


def stage_priorities(stage) -> dict[int, float]:
    """Study id -> priority of every study ranked in the stage's queue and still in it."""
    return dict(
        StudyPriority.objects.filter(stage=stage, study__current_stage=stage).values_list(
            "study_id", "priority"
        )
    )


def queue_ordered(pks, stage) -> list[int]:
    """These studies in the stage's prioritised order: ranked by priority descending, then the
    unranked, ties and unranked ones by id."""
    ranked = dict(StudyPriority.objects.filter(stage=stage).values_list("study_id", "priority"))
    return sorted(pks, key=lambda pk: (pk not in ranked, -ranked.get(pk, 0.0), pk))


def exclusion_criteria(review, n=3) -> list[Criterion]:
    return [
        Criterion.objects.create(
            review=review, kind=Criterion.Kind.EXCLUSION, code=f"EC{i}", text=f"Excluded {i}"
        )
        for i in range(1, n + 1)
    ]
