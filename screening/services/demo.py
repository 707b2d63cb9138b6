"""The living demo review: its records imported through the real import path, deduplicated,
then partly screened, assessed and extracted by the demo team through the same services the
pages call, so that every page of a new installation shows something.

Deterministic: the corpus comes from a fixed random seed and each reviewer's verdicts from the
paper's kind (see `demo_data.corpus`), with a fixed share of disagreements. Run once per review:
`demo_review_populate` does nothing when the review already has imports.
"""

from __future__ import annotations

import random
from typing import Any

from ..demo_data import included_studies
from ..demo_data.corpus import RANDOM_SEED, Corpus, corpus_build, export_file
from ..models import (
    Criterion,
    ExtractionField,
    ImportBatch,
    QualityCriterion,
    RankingRun,
    Review,
    Stage,
    Study,
)
from . import dedup, extraction, fulltext, imports, quality, ranking, screening
from .funnel import funnel_compute

# How far the demo team got: studies screened by both reviewers at title, at abstract.
TITLE_SCREENED = 300
ABSTRACT_SCREENED = 60
DISAGREE_EVERY = 14  # one study in 14 gets two different verdicts at title
CONFLICTS_LEFT_OPEN = 6
DUPLICATES = 250


def _norm(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def demo_review_populate(*, review: Review, owner: Any, reviewers: list[Any]) -> bool:
    """Import, deduplicate and partly screen the demo review; False when it has imports."""
    if review.batches.exists() or review.studies.exists():
        return False
    corpus = _corpus(review)
    _import(review=review, owner=owner, corpus=corpus)
    dedup.review_deduplicate(review=review)
    kinds = _kinds(corpus)
    studies = _studies_by_kind(review=review, kinds=kinds)
    stages = {stage.key: stage for stage in review.stages.all()}
    _title(review=review, stages=stages, studies=studies, reviewers=reviewers, owner=owner)
    _abstract(review=review, stage=stages["abstract"], kinds=kinds, reviewers=reviewers)
    _full_text(review=review, stage=stages["full_text"], kinds=kinds, team=[owner, *reviewers])
    _quality(review=review, owner=owner, reviewers=reviewers)
    _extraction(review=review, owner=owner, reviewer=reviewers[0])
    _rank(review=review, stage=stages["title"])
    funnel_compute(review=review)
    return True


def _corpus(review: Review) -> Corpus:
    hits = {
        (run.search_string.position, run.source.name): run.hits_reported
        for run in review.search_runs.select_related("search_string", "source")
        if run.hits_reported
    }
    return corpus_build(hits=hits, included=included_studies(), duplicates=DUPLICATES)


def _import(*, review: Review, owner: Any, corpus: Corpus) -> None:
    runs = {
        (run.search_string.position, run.source.name): run
        for run in review.search_runs.select_related("search_string", "source")
    }
    for (position, library), entries in corpus.runs.items():
        run = runs[(position, library)]
        fmt, extension, data = export_file(library, entries)
        batch = imports.batch_create(
            review=review,
            source=run.source,
            uploaded_by=owner,
            file_name=f"{library} - string {position + 1}.{extension}",
            data=data,
            search_run=run,
            format=fmt,
            enqueue=False,
        )
        batch = imports.batch_run(batch_id=batch.pk) or batch
        if batch.status != ImportBatch.Status.DONE:
            raise RuntimeError(f"The demo file {batch.original_name} failed: {batch.error}")


def _kinds(corpus: Corpus) -> dict[str, str]:
    """Normalised DOI or title -> the paper's kind, for the studies dedup made of them."""
    kinds: dict[str, str] = {}
    for entry in corpus.entries():
        if entry.doi:
            kinds[entry.doi.lower()] = entry.kind
        kinds[_norm(entry.title)] = entry.kind
    return kinds


def _kind_of(study: Study, kinds: dict[str, str]) -> str:
    return kinds.get(study.doi.lower()) or kinds.get(_norm(study.title)) or "other"


def _studies_by_kind(*, review: Review, kinds: dict[str, str]) -> list[tuple[Study, str]]:
    """The studies the team screens at title: every included paper among the first ones."""
    rng = random.Random(RANDOM_SEED)
    every = [(study, _kind_of(study, kinds)) for study in review.studies.order_by("id")]
    rng.shuffle(every)
    included = [pair for pair in every if pair[1] == "included"]
    rest = [pair for pair in every if pair[1] != "included"]
    chosen = included + rest[: TITLE_SCREENED - len(included)]
    rng.shuffle(chosen)
    return chosen


def _criteria(review: Review) -> dict[str, Criterion]:
    return {criterion.code: criterion for criterion in review.criteria.all()}


def _title_verdicts(kind: str, index: int) -> tuple[str, str]:
    verdict = {
        "included": "include",
        "mlops": "uncertain" if index % 3 else "include",
        "application": "exclude",
        "other": "exclude",
    }[kind]
    if kind == "included" or index % DISAGREE_EVERY:
        return verdict, verdict
    return verdict, "uncertain" if verdict != "uncertain" else "exclude"


def _decide(
    *,
    review: Review,
    study: Study,
    stage: Stage,
    reviewers: list[Any],
    verdict: str,
    reasons: list[Criterion],
) -> None:
    """Each of `reviewers` records the same verdict (reasons only with an exclusion)."""
    for reviewer in reviewers:
        screening.decision_record(
            review=review,
            study=study,
            stage=stage,
            reviewer=reviewer,
            verdict=verdict,
            reasons=reasons if verdict == "exclude" else [],
        )


def _title(
    *,
    review: Review,
    stages: dict[str, Stage],
    studies: list[tuple[Study, str]],
    reviewers: list[Any],
    owner: Any,
) -> None:
    criteria = _criteria(review)
    reason = {"application": [criteria["EC2"]], "other": [criteria["EC4"]]}
    conflicts = []
    for index, (study, kind) in enumerate(studies):
        verdicts = _title_verdicts(kind, index)
        for reviewer, verdict in zip(reviewers, verdicts, strict=True):
            _decide(
                review=review,
                study=study,
                stage=stages["title"],
                reviewers=[reviewer],
                verdict=verdict,
                reasons=reason.get(kind, [criteria["EC6"]]),
            )
        if verdicts[0] != verdicts[1]:
            conflicts.append((study, verdicts[0]))
    # The owner settled all but a few of the conflicts (with the first reviewer's verdict).
    for study, verdict in conflicts[CONFLICTS_LEFT_OPEN:]:
        screening.conflict_resolve(
            review=review,
            study=study,
            stage=stages["title"],
            adjudicator=owner,
            verdict=verdict,
            reasons=[criteria["EC4"]] if verdict == "exclude" else [],
            note="Discussed in the weekly meeting.",
        )


def _abstract(*, review: Review, stage: Stage, kinds: dict[str, str], reviewers: list[Any]) -> None:
    criteria = _criteria(review)
    waiting = list(
        Study.objects.filter(review=review, current_stage=stage, outcome=Study.Outcome.SCREENING)
        .exclude(resolutions__stage=stage)
        .order_by("id")[:ABSTRACT_SCREENED]
    )
    for index, study in enumerate(waiting):
        kind = _kind_of(study, kinds)
        verdict = (
            "include" if kind == "included" or (kind == "mlops" and index % 3 == 0) else "exclude"
        )
        _decide(
            review=review,
            study=study,
            stage=stage,
            reviewers=reviewers,
            verdict=verdict,
            reasons=[criteria["EC6"]],
        )


def _full_text(*, review: Review, stage: Stage, kinds: dict[str, str], team: list[Any]) -> None:
    """The included papers are included; two others are not retrievable, the rest excluded
    with reasons, except a few left for the full-text queue."""
    owner, reviewers = team[0], team[1:]
    criteria = _criteria(review)
    waiting = list(
        Study.objects.filter(review=review, current_stage=stage, outcome=Study.Outcome.SCREENING)
        .exclude(resolutions__stage=stage)
        .order_by("id")
    )
    others = [study for study in waiting if _kind_of(study, kinds) != "included"]
    for study in others[:2]:
        fulltext.fulltext_mark_not_retrievable(
            review=review, study=study, user=owner, reason="Not in the library's subscription."
        )
    excluded = {study.pk for study in others[2:-4]}
    for study in waiting:
        if _kind_of(study, kinds) == "included":
            verdict, reasons = "include", []
        elif study.pk in excluded:
            verdict, reasons = "exclude", [criteria["EC6" if study.pk % 2 else "EC3"]]
        else:
            continue
        _decide(
            review=review,
            study=study,
            stage=stage,
            reviewers=reviewers,
            verdict=verdict,
            reasons=reasons,
        )


def _included(review: Review) -> list[Study]:
    return list(review.studies.filter(outcome=Study.Outcome.INCLUDED).order_by("id"))


def _quality(*, review: Review, owner: Any, reviewers: list[Any]) -> None:
    """Both reviewers answer Table 5's scores for every included study and mark it done."""
    scores = {study["doi"].lower(): study["quality"] for study in included_studies()}
    criteria = list(QualityCriterion.objects.filter(review=review).order_by("position"))
    for study in _included(review):
        table5 = scores.get(study.doi.lower())
        if table5 is None:
            continue
        quality.quality_assessors_assign(
            review=review, study=study, assessors=reviewers, actor=owner
        )
        for assessor in reviewers:
            for criterion in criteria:
                quality.quality_answer_record(
                    review=review,
                    study=study,
                    criterion=criterion,
                    assessor=assessor,
                    answer="Yes" if table5[criterion.code] else "No",
                    seen_version=0,
                )
            quality.quality_complete_set(review=review, study=study, assessor=assessor)


def _extraction(*, review: Review, owner: Any, reviewer: Any) -> None:
    """A "contributes to RQn" flag per research question, filled in for ten included studies
    (the seed's themes: every paper touches the lifecycle, some the others)."""
    fields = extraction.extraction_contribution_flags_create(review=review, actor=owner)
    fields = fields or list(ExtractionField.objects.filter(review=review, is_contribution=True))
    for index, study in enumerate(_included(review)[:10]):
        extraction.extraction_extractors_assign(
            review=review, study=study, extractors=[reviewer], actor=owner
        )
        for position, field in enumerate(fields):
            extraction.extraction_value_save(
                review=review,
                study=study,
                field=field,
                extractor=reviewer,
                raw="yes" if position == 0 or (index + position) % 3 == 0 else "no",
                seen_version=0,
            )
        extraction.extraction_complete_set(review=review, study=study, extractor=reviewer)


def _rank(*, review: Review, stage: Stage) -> None:
    """Train the title stage's model now, so the queue order and the chart do not wait for a
    worker (a task sent for the same run later finds it done)."""
    ranking.ranking_schedule_if_due(review=review, stage=stage, force=True)
    for run in RankingRun.objects.filter(stage=stage, status=RankingRun.Status.PENDING):
        ranking.ranking_run_execute(run_id=run.pk)
