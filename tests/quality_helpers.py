"""Helpers for the quality and extraction tests: the seed's protocol and included studies."""

import html
import json
import re
from pathlib import Path

from screening.models import QualityCriterion, ResearchQuestion, Study

SEED = json.loads(
    (Path(__file__).resolve().parent.parent / "screening/demo_data/mlops_seed.json").read_text(
        encoding="utf-8"
    )
)
TABLE5 = SEED["included_studies_quality_table5"]
THEMES = SEED["extraction_themes_reported"]["counts"]


def seed_protocol(review) -> None:
    """The seed's research questions and quality criteria on a review."""
    for position, rq in enumerate(SEED["research_questions"]):
        ResearchQuestion.objects.create(
            review=review, code=rq["code"], text=rq["text"], theme=rq["theme"], position=position
        )
    for position, qc in enumerate(SEED["quality_criteria"]["criteria"]):
        QualityCriterion.objects.create(
            review=review, code=qc["code"], text=qc["text"], position=position
        )


def included_study(review, title="An included study", year=2020, **extra) -> Study:
    return Study.objects.create(
        review=review, title=title, year=year, outcome=Study.Outcome.INCLUDED, **extra
    )


def seed_studies(review) -> list[Study]:
    """The 30 included studies of Table 5, in the paper's order (title = the paper's citation)."""
    return [
        included_study(
            review,
            title=row["study"],
            year=int(re.search(r"(\d{4})$", row["study"]).group(1)),
            doi=row["doi"],
        )
        for row in TABLE5
    ]


def page_title(body: str) -> str:
    """The text of a page's <title>, entities decoded."""
    match = re.search(r"<title>(.*?)</title>", body, re.DOTALL)
    assert match, "the page has no <title>"
    return html.unescape(match.group(1))


def answer_as_seen(**kwargs):
    """`quality_answer_record` as a freshly loaded sheet calls it: with the stored version."""
    from screening.models import QualityAnswer
    from screening.services.quality import quality_answer_record

    current = QualityAnswer.objects.filter(
        study=kwargs["study"], criterion=kwargs["criterion"], assessor=kwargs["assessor"]
    ).first()
    return quality_answer_record(**kwargs, seen_version=current.version if current else 0)


def mark_done(review, study, *assessors) -> None:
    """Each assessor marks the study done (the last one reveals the answers)."""
    from screening.services.quality import quality_complete_set

    for assessor in assessors:
        quality_complete_set(review=review, study=study, assessor=assessor)
