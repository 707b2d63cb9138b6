"""Assignment under concurrency: threads on PostgreSQL asking for work at the same time."""

import threading

import pytest
from django.db import connection, connections

from screening.models import Decision, Membership
from screening.services.screening import decision_record, study_claim_next

from .factories import UserFactory, review_with_cast
from .screening_helpers import make_studies, stage

pytestmark = pytest.mark.django_db(transaction=True)


def test_many_reviewers_at_once_never_exceed_required_decisions():
    if connection.vendor != "postgresql":
        pytest.skip("row locks with SKIP LOCKED need PostgreSQL")
    review, _ = review_with_cast()
    reviewers = []
    for i in range(8):
        user = UserFactory(username=f"concurrent{i}")
        Membership.objects.create(review=review, user=user, role="reviewer")
        reviewers.append(user)
    studies = make_studies(review, 20)
    title = stage(review)
    barrier = threading.Barrier(len(reviewers))
    errors: list[BaseException] = []
    recorded: list[tuple[int, int]] = []
    lock = threading.Lock()

    def work(user):
        try:
            barrier.wait()
            while True:
                study = study_claim_next(review=review, stage=title, reviewer=user)
                if study is None:
                    return
                decision_record(
                    review=review, study=study, stage=title, reviewer=user, verdict="exclude"
                )
                with lock:
                    recorded.append((study.pk, user.pk))
        except BaseException as error:  # noqa: BLE001 - reported to the test thread below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(user,)) for user in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    # Every study got exactly its two decisions, from two different reviewers, none lost.
    per_study = {}
    for study_pk, user_pk in Decision.objects.values_list("study_id", "reviewer_id"):
        per_study.setdefault(study_pk, []).append(user_pk)
    assert {pk: len(users) for pk, users in per_study.items()} == {s.pk: 2 for s in studies}
    assert all(len(set(users)) == 2 for users in per_study.values())
    assert len(recorded) == Decision.objects.count() == 40
