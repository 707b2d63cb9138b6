"""The next-study pick starts after the reviewer's position in the queue, and still finds what was
freed behind it: each pick here is checked against the first free study in queue order."""

import pytest
from django.utils import timezone

from screening.models import Decision, RankingRun, ScreeningClaim, Stage, Study, StudyPriority
from screening.models.records import STUDY_SHUFFLE_MODULUS, STUDY_SHUFFLE_MULTIPLIER
from screening.services.ranking import ranking_priorities_write
from screening.services.screening import (
    decision_record,
    decision_undo,
    study_claim_next,
    study_skip,
)

from .screening_helpers import make_studies, stage


def _queue(title: Stage, reviewer) -> list[Study]:
    """The stage's waiting studies in the order the reviewer is served them."""
    studies = list(Study.objects.filter(current_stage=title, outcome=Study.Outcome.SCREENING))
    if title.queue_order == Stage.QueueOrder.RANDOM:
        start = (reviewer.pk * STUDY_SHUFFLE_MULTIPLIER) % STUDY_SHUFFLE_MODULUS

        def shuffle(study: Study) -> int:
            return (study.pk * STUDY_SHUFFLE_MULTIPLIER) % STUDY_SHUFFLE_MODULUS

        return sorted(studies, key=lambda s: (shuffle(s) < start, shuffle(s), s.pk))
    ranked = dict(StudyPriority.objects.filter(stage=title).values_list("study_id", "priority"))
    return sorted(studies, key=lambda s: (s.pk not in ranked, -ranked.get(s.pk, 0.0), s.pk))


def _first_free(title: Stage, reviewer) -> Study | None:
    """The plain scan, in Python: the first study in queue order the reviewer may take."""
    now = timezone.now()
    for study in _queue(title, reviewer):
        decisions = Decision.objects.filter(study=study, stage=title)
        if decisions.filter(reviewer=reviewer).exists():
            continue
        claims = ScreeningClaim.objects.filter(study=study, stage=title)
        if claims.filter(reviewer=reviewer, skipped=True).exists():
            continue
        taken = decisions.count() + (
            claims.exclude(reviewer=reviewer).filter(skipped=False, expires_at__gt=now).count()
        )
        if taken < title.reviewers_required:
            return study
    return None


def _screen(review, title: Stage, reviewer, n: int) -> list[Study]:
    """The reviewer takes and excludes n studies, each the first free one in queue order."""
    served = []
    for _ in range(n):
        expected = _first_free(title, reviewer)
        study = study_claim_next(review=review, stage=title, reviewer=reviewer)
        assert study is not None and study == expected
        decision_record(
            review=review, study=study, stage=title, reviewer=reviewer, verdict="exclude"
        )
        served.append(study)
    return served


@pytest.fixture
def title(review):
    return stage(review)


@pytest.mark.parametrize("order", ["prioritised", "random"])
def test_a_reviewer_ahead_of_their_partner_is_served_in_queue_order(review, cast, title, order):
    title.queue_order = order
    title.save(update_fields=["queue_order"])
    make_studies(review, 15, priority=0.5)
    make_studies(review, 15)  # unranked: the second queue of the prioritised order
    # Dual screening, the partner idle: every study the reviewer decided still waits.
    _screen(review, title, cast["reviewer"], 25)
    # The partner starts from the beginning of their own queue.
    _screen(review, title, cast["reviewer2"], 3)
    _screen(review, title, cast["reviewer"], 5)
    assert study_claim_next(review=review, stage=title, reviewer=cast["reviewer"]) is None


def test_a_random_queue_wraps_around_the_reviewers_start(review, cast, title):
    title.queue_order = "random"
    title.save(update_fields=["queue_order"])
    start = (cast["reviewer"].pk * STUDY_SHUFFLE_MULTIPLIER) % STUDY_SHUFFLE_MODULUS

    def before_start(study: Study) -> bool:
        return (study.pk * STUDY_SHUFFLE_MULTIPLIER) % STUDY_SHUFFLE_MODULUS < start

    # Which side of the start a study falls on follows from the ids the sequence hands out,
    # and the tests run before this one take some: add studies until both sides hold some.
    studies = make_studies(review, 40)
    while len({before_start(s) for s in studies}) < 2 and len(studies) < 400:
        studies += make_studies(review, 10)
    queue = _queue(title, cast["reviewer"])
    wrapped = [before_start(s) for s in queue]
    assert any(wrapped) and not all(wrapped)  # both sides of the start hold studies
    assert _screen(review, title, cast["reviewer"], len(queue)) == queue


def _held_by_two_others(review, cast, title) -> Study:
    """Dual screening: the first study is claimed by the two other screeners, so the reviewer
    passes it and decides four more (which stay in the stage, waiting for a second decision)."""
    first, *_rest = make_studies(review, 10)
    for other in ("reviewer2", "owner"):
        assert study_claim_next(review=review, stage=title, reviewer=cast[other]) == first
    passed = _screen(review, title, cast["reviewer"], 4)
    assert first not in passed
    return first


def test_a_claim_expired_behind_the_position_is_served_next(review, cast, title):
    first = _held_by_two_others(review, cast, title)
    ScreeningClaim.objects.filter(reviewer=cast["reviewer2"]).update(expires_at=timezone.now())
    assert study_claim_next(review=review, stage=title, reviewer=cast["reviewer"]) == first


def test_a_study_the_partner_skipped_behind_the_position_is_served_next(review, cast, title):
    first = _held_by_two_others(review, cast, title)
    study_skip(review=review, stage=title, study=first, reviewer=cast["reviewer2"])
    assert study_claim_next(review=review, stage=title, reviewer=cast["reviewer"]) == first


def test_a_partners_undone_decision_behind_the_position_is_served_once_their_claim_ends(
    review, cast, title
):
    first = _held_by_two_others(review, cast, title)
    for other in ("reviewer2", "owner"):
        decision_record(
            review=review, study=first, stage=title, reviewer=cast[other], verdict="exclude"
        )
    first.refresh_from_db()
    assert first.outcome == Study.Outcome.EXCLUDED  # resolved: it left the queue
    # Undone, the study is back in the stage and the partner's again (their claim): still full.
    decision_undo(
        review=review, study=first, stage=title, reviewer=cast["reviewer2"], seen_version=1
    )
    assert study_claim_next(review=review, stage=title, reviewer=cast["reviewer"]) != first
    ScreeningClaim.objects.filter(reviewer=cast["reviewer"]).delete()
    ScreeningClaim.objects.filter(reviewer=cast["reviewer2"]).update(expires_at=timezone.now())
    assert study_claim_next(review=review, stage=title, reviewer=cast["reviewer"]) == first


def test_after_a_retrain_the_top_study_is_served_first(review, cast, title):
    title.queue_order = "prioritised"
    title.save(update_fields=["queue_order"])
    studies = make_studies(review, 10, priority=0.5)
    _screen(review, title, cast["reviewer"], 4)
    # The retrain ranks the last study first: its key is now before the reviewer's position.
    ranking_priorities_write(stage=title, priorities={studies[-1].pk: 0.9})
    RankingRun.objects.create(
        review=review,
        stage=title,
        status=RankingRun.Status.DONE,
        scored=1,
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    ScreeningClaim.objects.filter(reviewer=cast["reviewer"]).delete()
    assert study_claim_next(review=review, stage=title, reviewer=cast["reviewer"]) == studies[-1]


def test_while_a_retrain_writes_the_queue_is_read_from_the_start(review, cast, title):
    title.queue_order = "prioritised"
    title.save(update_fields=["queue_order"])
    studies = make_studies(review, 10, priority=0.5)
    _screen(review, title, cast["reviewer"], 4)
    RankingRun.objects.create(
        review=review, stage=title, status=RankingRun.Status.RUNNING, started_at=timezone.now()
    )
    ranking_priorities_write(stage=title, priorities={studies[-1].pk: 0.9})
    ScreeningClaim.objects.filter(reviewer=cast["reviewer"]).delete()
    assert study_claim_next(review=review, stage=title, reviewer=cast["reviewer"]) == studies[-1]
