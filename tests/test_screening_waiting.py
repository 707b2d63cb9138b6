"""The studies waiting in a stage, as `stages_waiting` reads them (on PostgreSQL from the
per-stage deltas its triggers keep, migration 0014): exact after every kind of write to the
studies, and after the sweep folds the deltas."""

import pytest
from django.db import connection

from screening.models import Stage, Study
from screening.selectors.screening import stages_waiting
from screening.services.ranking import ranking_priorities_write
from screening.services.screening import stage_waiting_compact

from .screening_helpers import make_studies, stage

pytestmark = pytest.mark.django_db


def stage_waiting(*, stage: Stage) -> int:
    return stages_waiting(stages=[stage])[stage.pk]


def _counted(stage_obj: Stage) -> int:
    return Study.objects.filter(current_stage=stage_obj, outcome=Study.Outcome.SCREENING).count()


def _assert_exact(*stages: Stage) -> None:
    for current in stages:
        assert stage_waiting(stage=current) == _counted(current)


def test_waiting_count_follows_inserts_moves_outcomes_and_deletes(review):
    title, full_text = stage(review), stage(review, "full_text")
    studies = make_studies(review, 5)
    Study.objects.bulk_create(
        Study(review=review, title=f"Bulk {i}", current_stage=title) for i in range(7)
    )
    _assert_exact(title, full_text)
    assert stage_waiting(stage=title) == 12

    studies[0].current_stage = full_text  # routed on
    studies[0].save(update_fields=["current_stage", "updated_at"])
    studies[1].outcome = Study.Outcome.EXCLUDED  # resolved here
    studies[1].save(update_fields=["outcome", "updated_at"])
    Study.objects.filter(pk=studies[2].pk).update(outcome=Study.Outcome.EXCLUDED_AUTOMATIC)
    Study.objects.filter(pk=studies[1].pk).update(outcome=Study.Outcome.SCREENING)  # undone
    ranking_priorities_write(stage=title, priorities={studies[3].pk: 0.7})  # no change
    _assert_exact(title, full_text)
    assert stage_waiting(stage=full_text) == 1

    Study.objects.filter(title__startswith="Bulk ").delete()
    _assert_exact(title, full_text)
    assert stage_waiting(stage=title) == 3


def test_folding_the_deltas_keeps_the_counts(review):
    title, full_text = stage(review), stage(review, "full_text")
    studies = make_studies(review, 6)
    for study in studies[:4]:
        study.current_stage = full_text
        study.save(update_fields=["current_stage", "updated_at"])
    folded = stage_waiting_compact()
    _assert_exact(title, full_text)
    if connection.vendor == "postgresql":
        assert folded > 0
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM screening_stage_waiting WHERE stage_id IN (%s, %s)",
                [title.pk, full_text.pk],
            )
            assert cursor.fetchone()[0] == 2  # one row per stage
    make_studies(review, 2)
    _assert_exact(title, full_text)
    assert stage_waiting(stage=title) == 4


def test_waiting_counts_are_emptied_with_the_studies(review):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite counts the studies")
    title = stage(review)
    make_studies(review, 3)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred checks pending
        cursor.execute(f"TRUNCATE {Study._meta.db_table} CASCADE")
    assert stage_waiting(stage=title) == 0
