"""Helpers for the screening tests: studies created straight through the ORM."""

from screening.models import Criterion, Stage, Study


def stage(review, key="title") -> Stage:
    return Stage.objects.get(review=review, key=key)


def make_studies(review, n, *, stage_key="title", **fields) -> list[Study]:
    current = stage(review, stage_key)
    return [
        Study.objects.create(
            review=review,
            title=fields.get("title", f"Study number {i}"),
            abstract=fields.get("abstract", f"Abstract of study {i}."),
            venue=fields.get("venue", "ICSE"),
            year=fields.get("year", 2021),
            current_stage=current,
            priority=fields.get("priority"),
        )
        for i in range(n)
    ]


def exclusion_criteria(review, n=3) -> list[Criterion]:
    return [
        Criterion.objects.create(
            review=review, kind=Criterion.Kind.EXCLUSION, code=f"EC{i}", text=f"Excluded {i}"
        )
        for i in range(1, n + 1)
    ]
