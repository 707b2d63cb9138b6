"""Build a review's selection state directly as ORM rows (bulk inserts), for the funnel's
selector tests and the benchmark. The seed acceptance test goes through the services instead.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.db import transaction

from screening.models import (
    Criterion,
    Decision,
    FullText,
    ImportBatch,
    Record,
    Resolution,
    Review,
    SearchRun,
    SearchString,
    Source,
    Study,
)

SEED = json.loads(
    (Path(__file__).resolve().parent.parent / "screening/demo_data/mlops_seed.json").read_text()
)


def seed_expected_funnel() -> dict:
    """The seed's reported figures under the funnel JSON's names (fixture of the project)."""
    reported = SEED["selection_funnel_reported"]
    reasons = dict(reported["full_text_excluded"]["reasons"])
    not_retrieved = reasons.pop("content not accessible")
    return {
        "database_results": reported["identified"],
        "database_specific_results": reported["identified_by_source"],
        "duplicates": reported["duplicates_removed"],
        "excluded_automatic": 0,
        "excluded_other": 0,
        "records_screened": reported["screened_by_title"],
        "records_excluded": reported["title_stage"]["excluded"]
        + reported["abstract_stage"]["excluded"],
        "dbr_sought_reports": reported["full_text_assessed"],
        "dbr_notretrieved_reports": not_retrieved,
        "dbr_assessed": reported["full_text_assessed"] - not_retrieved,
        "dbr_excluded": reasons,
        "new_studies": reported["included"],
        "new_reports": reported["included"],
        "precision": {
            "included_percent": reported["precision_percent"]["included"],
            "full_text_percent": reported["precision_percent"]["full_text_assessed"],
        },
    }


def assert_seed_funnel(funnel: dict) -> None:
    """Field by field, so a failure names the field."""
    for name, value in seed_expected_funnel().items():
        assert funnel[name] == value, f"{name}: {funnel[name]!r} != {value!r}"
    reported = SEED["selection_funnel_reported"]
    stages = {s["stage"]: s for s in funnel["stages"]}
    title = reported["title_stage"]
    assert (stages["title"]["include"], stages["title"]["uncertain"]) == (
        title["selected"],
        title["doubtful"],
    )
    assert stages["title"]["exclude"] == title["excluded"]
    assert stages["title"]["screened"] == reported["screened_by_title"]
    assert stages["abstract"]["screened"] == reported["abstract_stage"]["screened"]
    assert stages["abstract"]["include"] == reported["abstract_stage"]["selected"]
    assert stages["abstract"]["exclude"] == reported["abstract_stage"]["excluded"]
    assert stages["full_text"]["include"] == reported["included"]


def protocol_setup(review: Review) -> dict:
    """Sources, search strings and Table 1's reported hits, and the exclusion criteria."""
    sources = {
        name: Source.objects.create(review=review, name=name, position=i)
        for i, name in enumerate(SEED["sources"])
    }
    runs = {}
    for i, row in enumerate(SEED["search_strings_table1"]):
        string = SearchString.objects.create(review=review, text=row["string"], position=i)
        for name, hits in row["hits"].items():
            runs[(i, name)] = SearchRun.objects.create(
                review=review, search_string=string, source=sources[name], hits_reported=hits
            )
    for i, criterion in enumerate(SEED["exclusion_criteria"]):
        Criterion.objects.create(
            review=review,
            kind=Criterion.Kind.EXCLUSION,
            code=criterion["code"],
            text=criterion["text"],
            position=i,
        )
    return {"sources": sources, "runs": runs}


@dataclass
class Plan:
    """How many of each outcome; the seed's numbers by default."""

    per_run: dict = field(
        default_factory=lambda: {
            (i, name): hits
            for i, row in enumerate(SEED["search_strings_table1"])
            for name, hits in row["hits"].items()
        }
    )
    duplicates: int = 250
    title: tuple[int, int, int] = (40, 284, 1331)
    abstract: tuple[int, int] = (17, 267)
    not_retrieved: int = 3
    ft_reasons: tuple[tuple[str, int], ...] = (("INVALID-TYPE", 3), ("DUPLICATE", 1), ("EC", 20))
    included: int = 30
    decisions_per_stage: int = 0


def build_selection(review: Review, users, plan: Plan | None = None) -> dict:
    """Insert records, studies, resolutions (and optionally decisions) and full-text states."""
    plan = plan or Plan()
    setup = protocol_setup(review)
    stages = {s.key: s for s in review.stages.all()}
    with transaction.atomic():
        batches = []
        for (string_index, name), hits in plan.per_run.items():
            if not hits:
                continue
            digest = hashlib.sha256(f"{review.pk}-{string_index}-{name}".encode()).hexdigest()
            batches.append(
                (
                    ImportBatch.objects.create(
                        review=review,
                        source=setup["sources"][name],
                        search_run=setup["runs"][(string_index, name)],
                        file=f"imports/{digest}.ris",
                        original_name=f"{name} {string_index}.ris",
                        sha256=digest,
                        format="ris",
                        status=ImportBatch.Status.DONE,
                        records_read=hits,
                    ),
                    hits,
                )
            )
        total = sum(h for _, h in batches)
        n_studies = total - plan.duplicates
        studies = Study.objects.bulk_create(
            Study(
                review=review,
                title=f"Study {i} on <b>MLOps</b> & pipelines",
                year=2015 + i % 7,
                venue="Proceedings of the Conference on Things" if i % 2 else "Journal of ML",
                doi=f"10.1000/seed.{i}",
                authors=[f"Author{i}, A.", "Second, B."],
                outcome=Study.Outcome.EXCLUDED,
            )
            for i in range(n_studies)
        )
        records = []
        index = 0
        for batch, hits in batches:
            for position in range(1, hits + 1):
                study = studies[index] if index < n_studies else studies[(index * 7) % n_studies]
                records.append(
                    Record(
                        review=review,
                        batch=batch,
                        study=study,
                        position=position,
                        title=study.title,
                        doi=study.doi,
                        year=study.year,
                    )
                )
                index += 1
        Record.objects.bulk_create(records, batch_size=5000)

        inc, unc, exc = plan.title
        ab_inc, ab_exc = plan.abstract
        title_include = studies[:inc]
        title_uncertain = studies[inc : inc + unc]
        abstract_include = title_uncertain[:ab_inc]
        sought = title_include + abstract_include
        not_retrieved = sought[: plan.not_retrieved]
        assessed = sought[plan.not_retrieved :]
        included = assessed[: plan.included]
        ft_excluded = assessed[plan.included :]

        resolutions = []

        def resolve(stage, group, verdict):
            resolutions.extend(
                Resolution(review=review, study=s, stage=stage, verdict=verdict, method="agreement")
                for s in group
            )

        resolve(stages["title"], title_include, "include")
        resolve(stages["title"], title_uncertain, "uncertain")
        resolve(stages["title"], studies[inc + unc : inc + unc + exc], "exclude")
        resolve(stages["abstract"], abstract_include, "include")
        resolve(stages["abstract"], title_uncertain[ab_inc : ab_inc + ab_exc], "exclude")
        resolve(stages["full_text"], included, "include")
        resolve(stages["full_text"], ft_excluded, "exclude")
        Resolution.objects.bulk_create(resolutions, batch_size=5000)

        criteria = {c.code: c for c in review.criteria.all()}
        ft_resolutions = {
            r.study_id: r
            for r in Resolution.objects.filter(
                stage=stages["full_text"], verdict="exclude", study__review=review
            )
        }
        through = Resolution.reasons.through
        links = []
        cursor = 0
        for code, n in plan.ft_reasons:
            for study in ft_excluded[cursor : cursor + n]:
                resolution = ft_resolutions[study.id]
                if code == "EC":
                    # Two protocol criteria on one exclusion still count once.
                    for ec in ("EC4", "EC6"):
                        links.append(
                            through(resolution_id=resolution.id, criterion_id=criteria[ec].id)
                        )
                else:
                    links.append(
                        through(resolution_id=resolution.id, criterion_id=criteria[code].id)
                    )
                    links.append(
                        through(resolution_id=resolution.id, criterion_id=criteria["EC6"].id)
                    )
            cursor += n
        through.objects.bulk_create(links, batch_size=5000)
        FullText.objects.bulk_create(
            FullText(study=s, status=FullText.Status.NOT_RETRIEVABLE, reason="Paywalled")
            for s in not_retrieved
        )
        Study.objects.filter(id__in=[s.id for s in included]).update(outcome=Study.Outcome.INCLUDED)
        Study.objects.filter(id__in=[s.id for s in not_retrieved]).update(
            outcome=Study.Outcome.NOT_RETRIEVED
        )
        if plan.decisions_per_stage:
            reviewers = list(users)[: plan.decisions_per_stage]
            decisions = [
                Decision(
                    review=review,
                    study_id=r.study_id,
                    stage_id=r.stage_id,
                    reviewer=reviewer,
                    verdict=r.verdict,
                )
                for r in resolutions
                for reviewer in reviewers
            ]
            Decision.objects.bulk_create(decisions, batch_size=10000)
    return {
        "studies": studies,
        "included": included,
        "not_retrieved": not_retrieved,
        "ft_excluded": ft_excluded,
        "sources": setup["sources"],
    }


@pytest.fixture(scope="module")
def seeded_module(django_db_setup, django_db_blocker):
    """One seeded review (the seed's numbers as ORM rows) shared by a module's read-only tests.

    Committed outside the per-test transactions, removed when the module ends; tests that
    write do so inside their own rolled-back transaction.
    """
    from django.contrib.auth import get_user_model
    from django.test import override_settings

    from .conftest import FAST_PASSWORD_HASHERS
    from .factories import review_with_cast

    with django_db_blocker.unblock(), override_settings(PASSWORD_HASHERS=FAST_PASSWORD_HASHERS):
        review, cast = review_with_cast(slug="seeded-review", title="Seeded <MLOps> review")
        built = build_selection(review, [cast["reviewer"], cast["reviewer2"]])
    yield review, cast, built
    with django_db_blocker.unblock():
        # Batches protect their sources: remove them before the review's cascade.
        ImportBatch.objects.filter(review=review).delete()
        Review.objects.filter(pk=review.pk).delete()
        get_user_model().objects.filter(pk__in=[u.pk for u in cast.values()]).delete()
