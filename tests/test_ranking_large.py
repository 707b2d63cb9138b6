"""Ranking a stage too large for one TF-IDF matrix (domain/ranking.py, "Large corpora"): the
thresholds are lowered so a small review takes the path a million-study stage takes."""

import numpy as np
import pytest
from django.urls import reverse

from screening.domain import ranking as ranking_domain
from screening.models import RankingRun, Study, StudyPriority
from screening.services import ranking as ranking_service
from screening.services.screening import study_claim_next

from .ranking_helpers import decide, resolve, studies_make
from .screening_helpers import priority_of, queue_ordered, stage_priorities


@pytest.fixture
def stage(review):
    return review.stages.get(is_entry=True)


@pytest.fixture
def large(monkeypatch):
    """Stages above 40 studies are large; the idf sample holds 25, the training 20 labels and
    the waiting studies are scored 7 at a time. Records what each step was given."""
    monkeypatch.setattr(ranking_domain, "LARGE_CORPUS", 40)
    monkeypatch.setattr(ranking_domain, "FIT_SAMPLE", 25)
    monkeypatch.setattr(ranking_domain, "TRAIN_CAP", 20)
    monkeypatch.setattr(ranking_service, "SCORE_CHUNK", 7)
    seen: dict[str, list[int]] = {"idf_fit": [], "train": [], "full_matrix": [], "chunks": []}
    idf_fit, classifier_fit = ranking_domain.hashed_tfidf_fit, ranking_domain.classifier_fit
    features_build, classifier_scores = (
        ranking_domain.features_build,
        ranking_domain.classifier_scores,
    )

    def spy(name, original):
        def wrapped(first, *args, **kwargs):
            seen[name].append(first.shape[0] if hasattr(first, "shape") else len(first))
            return original(first, *args, **kwargs)

        return wrapped

    def scores_spy(clf, features, **kwargs):
        seen["chunks"].append(features.shape[0])
        return classifier_scores(clf, features, **kwargs)

    monkeypatch.setattr(ranking_domain, "hashed_tfidf_fit", spy("idf_fit", idf_fit))
    monkeypatch.setattr(ranking_domain, "classifier_fit", spy("train", classifier_fit))
    monkeypatch.setattr(ranking_domain, "features_build", spy("full_matrix", features_build))
    monkeypatch.setattr(ranking_domain, "classifier_scores", scores_spy)
    return seen


def _train(review, stage):
    RankingRun.objects.filter(status__in=RankingRun.ACTIVE).delete()
    run = ranking_service.ranking_schedule_if_due(review=review, stage=stage, force=True)
    return ranking_service.ranking_run_execute(run_id=run.pk)


def test_large_stage_trains_on_a_bounded_sample_and_writes_a_head_larger_than_the_stage(
    review, cast, stage, large
):
    studies = studies_make(review, relevant=8, irrelevant=72)
    relevant = [s for s in studies if s.truth]
    irrelevant = [s for s in studies if not s.truth]
    screened = relevant[:2] + irrelevant[:28]  # 30 labels: more than the training cap
    for study in screened:
        verdict = "include" if study.truth else "exclude"
        decide(study, stage, cast["reviewer"], verdict)
        resolve(study, stage, verdict)
    run = _train(review, stage)
    assert run.status == "done", run.error
    waiting = [s for s in studies if s not in screened]
    assert run.scored == len(waiting) == 50
    # The idf saw a sample of the corpus, the classifier at most the cap, both relevant labels
    # among them; no matrix of the whole stage was built; the waiting studies went 7 at a time.
    assert large["idf_fit"] == [25]
    assert large["train"] == [20]
    assert large["full_matrix"] == []
    assert max(large["chunks"]) == 7 and sum(large["chunks"]) == 50
    ranked = set(StudyPriority.objects.values_list("study_id", flat=True))
    assert {s.pk for s in waiting} <= ranked
    assert not {s.pk for s in screened} & ranked
    queue = queue_ordered([s.pk for s in waiting], stage)
    assert all(pk in {s.pk for s in relevant} for pk in queue[:6])  # all 6 on-topic first


def _labelled(stage, reviewer, studies, count):
    for study in studies[:count]:
        verdict = "include" if study.truth else "exclude"
        decide(study, stage, reviewer, verdict)
        resolve(study, stage, verdict)
    return studies[count:]


def _prioritised(stage):
    return stage_priorities(stage)


def test_large_stage_ranks_only_the_head_and_unranks_studies_that_leave_it(
    review, cast, stage, large, monkeypatch
):
    studies = studies_make(review, relevant=8, irrelevant=72)
    waiting = _labelled(stage, cast["reviewer"], studies, 30)
    # Every waiting study ranked (the head larger than the stage): the model's scores of all.
    monkeypatch.setattr(ranking_service, "RANKED_HEAD", 1000)
    assert _train(review, stage).status == "done"
    scores = _prioritised(stage)
    assert set(scores) == {s.pk for s in waiting}
    best = sorted(scores, key=lambda pk: (-scores[pk], pk))

    # Same labels, a head of 10: the 10 best keep their scores, the 40 others are unranked.
    monkeypatch.setattr(ranking_service, "RANKED_HEAD", 10)
    run = _train(review, stage)
    assert run.status == "done" and run.scored == 10
    head = _prioritised(stage)
    assert set(head) == set(best[:10])
    assert head == pytest.approx({pk: scores[pk] for pk in best[:10]})

    # The reviewer screens the 4 best; the next retrain's head differs: the screened ones leave
    # it (their priorities are cleared) and never more than the head holds a priority.
    for pk in best[:4]:
        study = Study.objects.get(pk=pk)
        decide(study, stage, cast["reviewer"], "exclude")
        resolve(study, stage, "exclude")
    assert _train(review, stage).status == "done"
    head = _prioritised(stage)
    assert len(head) == 10
    assert not set(head) & set(best[:4])


def test_large_stage_queue_serves_the_best_scored_study_first(
    review, cast, stage, large, monkeypatch, client_for
):
    studies = studies_make(review, relevant=8, irrelevant=72)
    waiting = _labelled(stage, cast["reviewer"], studies, 30)
    monkeypatch.setattr(ranking_service, "RANKED_HEAD", 1000)
    assert _train(review, stage).status == "done"
    scores = _prioritised(stage)
    best = max(scores, key=lambda pk: (scores[pk], -pk))
    monkeypatch.setattr(ranking_service, "RANKED_HEAD", 5)
    assert _train(review, stage).status == "done"
    assert len(_prioritised(stage)) == 5
    picked = study_claim_next(review=review, stage=stage, reviewer=cast["reviewer2"])
    assert picked is not None and picked.pk == best
    assert picked.pk in {s.pk for s in waiting if s.truth}
    # The ranking panel says the others are not ranked.
    html = client_for("reviewer").get(reverse("screening:ranking_progress", args=[review.slug]))
    assert (
        "5 studies ranked (the best-scored; the other waiting studies follow in import order)"
        in (html.content.decode())
    )


def test_small_stage_ranks_every_waiting_study_whatever_the_head(review, cast, stage, monkeypatch):
    """Below LARGE_CORPUS the head does not apply: every waiting study gets a priority."""
    monkeypatch.setattr(ranking_service, "RANKED_HEAD", 5)
    studies = studies_make(review, relevant=8, irrelevant=72)
    waiting = _labelled(stage, cast["reviewer"], studies, 30)
    run = _train(review, stage)
    assert run.status == "done" and run.scored == 50
    assert set(_prioritised(stage)) == {s.pk for s in waiting}


def test_large_stage_blind_queue_does_not_reveal_a_colleagues_pending_include(
    review, cast, stage, large
):
    """As test_blind_queue_does_not_reveal_a_colleagues_pending_include, on the large path."""
    studies = studies_make(review, relevant=8, irrelevant=72)
    for study in studies[:14]:
        verdict = "include" if study.truth else "exclude"
        decide(study, stage, cast["reviewer"], verdict)
        resolve(study, stage, verdict)
    assert any(s.truth for s in studies[:14]) and not all(s.truth for s in studies[:14])
    target = next(s for s in studies[14:] if s.truth)
    assert _train(review, stage).status == "done"
    without = priority_of(target, stage=stage)
    assert without is not None
    decide(target, stage, cast["reviewer2"], "include")
    assert _train(review, stage).status == "done"
    assert priority_of(target, stage=stage) == pytest.approx(without, abs=1e-6)


def test_training_rows_bound_keeps_every_relevant_label_and_thins_the_irrelevant():
    labels = np.array([i % 10 == 0 for i in range(200)])  # 20 relevant, 180 irrelevant
    rows = ranking_domain.training_rows_bound(labels, cap=50, seed=3)
    assert len(rows) == 50 and list(rows) == sorted(set(rows))
    assert labels[rows].sum() == 20
    assert list(rows) == list(ranking_domain.training_rows_bound(labels, cap=50, seed=3))
    assert list(ranking_domain.training_rows_bound(labels, cap=200, seed=3)) == list(range(200))
    many = np.ones(200, dtype=bool)
    many[:5] = False
    capped = ranking_domain.training_rows_bound(many, cap=50, seed=3)
    assert len(capped) == 30 and many[capped].sum() == 25  # relevant up to half the cap


def test_hashed_tfidf_scores_chunks_as_the_whole():
    """A record's features do not depend on the records transformed beside it."""
    texts = [
        "model monitoring drift pipeline " * (i % 3 + 1) if i % 2 else "coral reef tide estuary"
        for i in range(30)
    ]
    model = ranking_domain.model_get(ranking_domain.DEFAULT_MODEL)
    vectoriser = ranking_domain.hashed_tfidf_fit(texts[:20], model=model)
    whole = vectoriser.transform(texts).toarray()
    parts = np.vstack([vectoriser.transform(texts[i : i + 7]).toarray() for i in range(0, 30, 7)])
    assert np.array_equal(whole, parts)
    assert np.allclose(np.linalg.norm(whole, axis=1), 1.0, atol=1e-6)
