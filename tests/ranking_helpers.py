"""Builders for the ranking tests: a small review corpus with an obvious topic, and decisions."""

import random

from screening.models import Decision, Resolution, Study

RELEVANT_WORDS = (
    "machine learning deployment pipeline continuous delivery model monitoring mlops "
    "production serving versioning drift retraining automation"
).split()
OTHER_WORDS = (
    "bird migration wetland river sediment coral reef soil erosion forest canopy rainfall "
    "glacier volcano pollen insect grazing estuary tide"
).split()


def study_text(rng: random.Random, relevant: bool) -> tuple[str, str]:
    words = RELEVANT_WORDS if relevant else OTHER_WORDS
    title = " ".join(rng.choice(words) for _ in range(6)).capitalize()
    abstract = " ".join(rng.choice(words + OTHER_WORDS[:3]) for _ in range(40))
    return title, abstract


def studies_make(review, *, relevant: int, irrelevant: int, seed: int = 7) -> list[Study]:
    """Studies in the review's entry stage; `study.truth` says whether it is on topic."""
    rng = random.Random(seed)
    stage = review.stages.get(is_entry=True)
    flags = [True] * relevant + [False] * irrelevant
    rng.shuffle(flags)
    studies = []
    for flag in flags:
        title, abstract = study_text(rng, flag)
        studies.append(Study(review=review, title=title, abstract=abstract, current_stage=stage))
    created = Study.objects.bulk_create(studies)
    for study, flag in zip(created, flags, strict=True):
        study.truth = flag
    return created


def decide(study, stage, reviewer, verdict):
    return Decision.objects.create(
        review=study.review, study=study, stage=stage, reviewer=reviewer, verdict=verdict
    )


def resolve(study, stage, verdict):
    return Resolution.objects.create(
        review=study.review, study=study, stage=stage, verdict=verdict, method="agreement"
    )


def screened_until_met(review, reviewer, *, relevant=40, irrelevant_after=200, unscreened=100):
    """The entry stage with `relevant` included studies screened first, then `irrelevant_after`
    excluded ones (each decided and resolved, in that order), and `unscreened` studies waiting.
    With the defaults the BUSCAR rule (0.95 / 0.95) is met: p = (100 * 99 * 98) /
    (300 * 299 * 298) = 0.036 on the urn of the last 200 screened."""
    stage = review.stages.get(is_entry=True)
    rng = random.Random(3)
    left = [i % 20 == 0 for i in range(unscreened)]  # a few relevant ones are left
    flags = [True] * relevant + [False] * irrelevant_after + left
    texts = [study_text(rng, flag) for flag in flags]
    studies = Study.objects.bulk_create(
        Study(review=review, title=title, abstract=abstract, current_stage=stage)
        for title, abstract in texts
    )
    screened = studies[: relevant + irrelevant_after]
    verdicts = ["include"] * relevant + ["exclude"] * irrelevant_after
    for study, verdict in zip(screened, verdicts, strict=True):
        decide(study, stage, reviewer, verdict)
        resolve(study, stage, verdict)
        if verdict == "exclude":
            study.outcome = Study.Outcome.EXCLUDED
            study.current_stage = None
            study.save(update_fields=["outcome", "current_stage"])
    return stage, studies[relevant + irrelevant_after :]
