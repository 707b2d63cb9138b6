"""The stage's "full" studies and each reviewer's decided studies that are not full, as the
PostgreSQL triggers keep them (migration 0015), equal a recount from scratch after every kind of
write: decisions recorded, changed, undone (with their resolution), carried to another study,
studies moved, excluded and brought back, deleted, merged and unmerged, a review restored, the
stage's reviewers_required changed, the deltas folded. And "Left for you" on the panel, read
from them, is what a reviewer has left, for the deciding reviewer and another."""

import json
from collections import Counter

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from screening.models import Decision, Stage, Study
from screening.selectors.screening import remaining_for_reviewer, screening_panel_state
from screening.services import backup
from screening.services.dedup import studies_merge, study_unmerge
from screening.services.protocol import stage_update
from screening.services.screening import (
    decision_record,
    decision_undo,
    stage_progress_compact,
    stage_progress_recount,
)

from .screening_helpers import make_studies, stage

pytestmark = pytest.mark.django_db

REVIEWERS = ("reviewer", "reviewer2")


def _recounted(stages: list[Stage]) -> Counter:
    """(stage, reviewer or None for "full") -> studies, counted from the decisions in Python."""
    counts: Counter = Counter()
    for current in stages:
        current.refresh_from_db(fields=["reviewers_required"])
        by_study: dict[int, list[int]] = {}
        for study_id, reviewer_id in Decision.objects.filter(
            stage=current,
            study__current_stage=current,
            study__outcome=Study.Outcome.SCREENING,
        ).values_list("study_id", "reviewer_id"):
            by_study.setdefault(study_id, []).append(reviewer_id)
        for reviewers in by_study.values():
            if len(reviewers) >= current.reviewers_required:
                counts[(current.pk, None)] += 1
            else:
                counts.update((current.pk, reviewer) for reviewer in reviewers)
    return counts


def _kept(stages: list[Stage]) -> Counter:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT stage_id, reviewer_id, SUM(delta) FROM screening_stage_progress"
            " WHERE stage_id = ANY(%s) GROUP BY stage_id, reviewer_id HAVING SUM(delta) <> 0",
            [[s.pk for s in stages]],
        )
        return Counter({(stage_id, reviewer): n for stage_id, reviewer, n in cursor.fetchall()})


def _left(current: Stage, user) -> int:
    """What is left for `user`, counted in Python: waiting, short of decisions, not theirs."""
    left = 0
    for study in Study.objects.filter(current_stage=current, outcome=Study.Outcome.SCREENING):
        reviewers = set(
            Decision.objects.filter(study=study, stage=current).values_list(
                "reviewer_id", flat=True
            )
        )
        left += len(reviewers) < current.reviewers_required and user.pk not in reviewers
    return left


def _assert_exact(review, cast) -> None:
    stages = list(Stage.objects.filter(review=review))
    if connection.vendor == "postgresql":
        assert _kept(stages) == _recounted(stages)
    for current in stages:
        for username in REVIEWERS:
            got = remaining_for_reviewer(review=review, stage=current, reviewer=cast[username])
            assert got == _left(current, cast[username]), (current.key, username)


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite groups the decisions (no kept counts)")


def _decide(review, study, user, verdict="include", key="title", **kw):
    return decision_record(
        review=review, study=study, stage=stage(review, key), reviewer=user, verdict=verdict, **kw
    )


def _required(review, cast, key: str, n: int) -> None:
    current = stage(review, key)
    stage_update(
        review=review,
        actor=cast["owner"],
        stage=current,
        values={"reviewers_required": n},
        seen_version=current.version,
    )


@pytest.mark.parametrize("required", [1, 2])
def test_counts_follow_decisions_undo_and_moves(postgres_only, review, cast, required):
    if required != 2:
        _required(review, cast, "title", required)
    reviewer, reviewer2 = cast["reviewer"], cast["reviewer2"]
    studies = make_studies(review, 8)
    _decide(review, studies[0], reviewer)
    _decide(review, studies[1], reviewer2, "exclude")
    _assert_exact(review, cast)
    if required == 2:
        _decide(review, studies[0], reviewer2, "exclude")  # a conflict: full, still waiting
        _decide(review, studies[1], reviewer, "exclude")  # agreement: leaves the stage
        _assert_exact(review, cast)
        decision_undo(
            review=review, stage=stage(review), reviewer=reviewer, study=studies[1], seen_version=1
        )
        _assert_exact(review, cast)  # the resolution withdrawn: back, mine no more
        _decide(review, studies[2], reviewer, "uncertain")  # changed below: counts stay
        _decide(review, studies[2], reviewer, "include", seen_version=1)
        decision_undo(
            review=review, stage=stage(review), reviewer=reviewer, study=studies[2], seen_version=2
        )
    else:  # each decision settled its study; undone, the study is back with none
        decision_undo(
            review=review, stage=stage(review), reviewer=reviewer, study=studies[0], seen_version=1
        )
    _assert_exact(review, cast)

    # Outcome changes and stage moves, as an automation stop, its undo and exclusions do them.
    Study.objects.filter(pk__in=[s.pk for s in studies[:3]]).update(
        outcome=Study.Outcome.EXCLUDED_AUTOMATIC
    )
    _assert_exact(review, cast)
    Study.objects.filter(pk__in=[s.pk for s in studies[:3]]).update(outcome=Study.Outcome.SCREENING)
    _assert_exact(review, cast)
    Study.objects.filter(pk=studies[1].pk).update(current_stage=stage(review, "abstract"))
    _assert_exact(review, cast)
    Study.objects.filter(pk=studies[1].pk).update(current_stage=stage(review))
    _assert_exact(review, cast)


def test_required_count_changes_are_recounted(postgres_only, review, cast):
    reviewer, reviewer2 = cast["reviewer"], cast["reviewer2"]
    studies = make_studies(review, 6)
    _decide(review, studies[0], reviewer)
    _decide(review, studies[1], reviewer2)
    _decide(review, studies[2], reviewer)
    _decide(review, studies[2], reviewer2, "exclude")  # a conflict
    _assert_exact(review, cast)
    _required(review, cast, "title", 1)  # every decided study is now full
    _assert_exact(review, cast)
    assert remaining_for_reviewer(review=review, stage=stage(review), reviewer=reviewer) == 3
    _required(review, cast, "title", 3)
    _assert_exact(review, cast)
    _decide(review, studies[0], reviewer2)
    _assert_exact(review, cast)


def test_deleted_carried_merged_and_restored_studies_keep_the_counts(postgres_only, review, cast):
    reviewer, reviewer2 = cast["reviewer"], cast["reviewer2"]
    studies = make_studies(review, 6)
    for study in studies[:4]:
        _decide(review, study, reviewer)
    _decide(review, studies[3], reviewer2, "exclude")
    _assert_exact(review, cast)

    # A decision carried to another study (a merge keeping the further study's decisions).
    Decision.objects.filter(study=studies[1], reviewer=reviewer).update(study=studies[4])
    _assert_exact(review, cast)
    # Carried onto a study another reviewer decided: it becomes full.
    Decision.objects.filter(study=studies[4], reviewer=reviewer).update(study=studies[5])
    _decide(review, studies[4], reviewer2)
    Decision.objects.filter(study=studies[5], reviewer=reviewer).update(study=studies[4])
    _assert_exact(review, cast)
    # A decision handed to another reviewer, and one moved to another stage.
    Decision.objects.filter(study=studies[0], reviewer=reviewer).update(reviewer=reviewer2)
    Decision.objects.filter(study=studies[2]).update(stage=stage(review, "abstract"))
    _assert_exact(review, cast)

    studies[0].delete()
    _assert_exact(review, cast)
    with connection.cursor() as cursor:  # the study before its decisions (checked at commit)
        cursor.execute("DELETE FROM screening_study WHERE id = %s", [studies[3].pk])
    _assert_exact(review, cast)
    Decision.objects.filter(study_id=studies[3].pk).delete()
    _assert_exact(review, cast)

    merge = studies_merge(review=review, first=studies[4], second=studies[5], user=cast["owner"])
    _assert_exact(review, cast)
    study_unmerge(review=review, merge=merge, user=cast["owner"])
    _assert_exact(review, cast)

    restored = backup.review_import(
        data=json.loads(json.dumps(backup.review_export(review=review))), slug="copy"
    )
    _assert_exact(restored, cast)  # restored by COPY: the triggers counted it
    assert (
        sum(_kept(list(restored.stages.all())).values())
        == sum(_kept(list(review.stages.all())).values())
        > 0
    )


def test_folding_and_recounting_keep_the_counts(postgres_only, review, cast):
    studies = make_studies(review, 5)
    for study in studies[:3]:
        _decide(review, study, cast["reviewer"])
    _decide(review, studies[0], cast["reviewer2"], "exclude")
    assert stage_progress_compact() > 0
    _assert_exact(review, cast)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM screening_stage_progress WHERE stage_id = %s",
            [stage(review).pk],
        )
        assert cursor.fetchone()[0] == 2  # "full" and the reviewer's
        cursor.execute("DELETE FROM screening_stage_progress")  # lost: a recount restores them
    stage_progress_recount(stage=stage(review))
    _assert_exact(review, cast)


def test_left_for_you_on_the_panel_after_a_reload(review, cast):
    """The panel's figure as the deciding reviewer and another one see it, on either database."""
    studies = make_studies(review, 5)
    first, second = Client(), Client()
    first.force_login(cast["reviewer"])
    second.force_login(cast["reviewer2"])
    page = reverse("screening:screening_stage", args=[review.slug, "title"])
    _decide(review, studies[0], cast["reviewer"])
    _decide(review, studies[1], cast["reviewer"])
    _decide(review, studies[1], cast["reviewer2"], "exclude")  # full (a conflict)
    title = stage(review)
    for client, username, left in ((first, "reviewer", 3), (second, "reviewer2", 4)):
        answer = client.get(page)
        assert answer.status_code == 200
        assert f'data-progress="left">{left}<' in answer.content.decode()
        assert left == _left(title, cast[username])
        state = screening_panel_state(
            review=review, stage=title, reviewer=cast[username], study=None
        )
        assert state.progress["left"] == left and state.progress["remaining"] == 4
