"""Quality and extraction at scale: service latency per answer and read time of the big pages.

Creates a throwaway review with N included studies in the database of DATABASE_URL (migrated),
enters every answer through the services as two assessors, then times Table 5, the overview,
the synthesis and the extraction table; deletes everything it created at the end.

    DATABASE_URL=postgres://... .venv/bin/python benchmarks/quality_bench.py --studies 300
"""

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slrweb.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402

from screening.models import Membership, QualityCriterion, ResearchQuestion, Study  # noqa: E402
from screening.selectors.extraction import extraction_synthesis, extraction_table  # noqa: E402
from screening.selectors.quality import quality_overview, quality_table5  # noqa: E402
from screening.services import extraction as ext  # noqa: E402
from screening.services import quality as qa  # noqa: E402
from screening.services.reviews import review_create  # noqa: E402


def timed(function, repeat: int = 5) -> float:
    """Median wall time of `repeat` calls, in milliseconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(samples), 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--studies", type=int, default=300)
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    users = get_user_model().objects
    owner = users.create(username=f"bench-owner-{tag}")
    first = users.create(username=f"bench-a-{tag}")
    second = users.create(username=f"bench-b-{tag}")
    review = review_create(slug=f"bench-quality-{tag}", title="Quality benchmark", owner=owner)
    try:
        for user in (first, second):
            Membership.objects.create(review=review, user=user, role=Membership.Role.REVIEWER)
        criteria = [
            QualityCriterion.objects.create(review=review, code=f"QC{i}", text=f"Criterion {i}")
            for i in range(1, 6)
        ]
        for i in range(1, 6):
            ResearchQuestion.objects.create(review=review, code=f"RQ{i}", text="?", theme=f"T{i}")
        studies = Study.objects.bulk_create(
            Study(review=review, title=f"Study {i}", year=2015 + i % 7, outcome="included")
            for i in range(args.studies)
        )
        start = time.perf_counter()
        qa.quality_assessors_assign_bulk(
            review=review, assessors=[first, second], per_study=2, actor=owner
        )
        assign_ms = (time.perf_counter() - start) * 1000
        latencies = []
        for index, study in enumerate(studies):
            for criterion in criteria:
                for user in (first, second):
                    answer = (
                        "y"
                        if (index + criterion.pk + (user == second) * (index % 9 == 0)) % 2
                        else "n"
                    )
                    start = time.perf_counter()
                    qa.quality_answer_record(
                        review=review,
                        study=study,
                        criterion=criterion,
                        assessor=user,
                        answer=answer,
                        seen_version=0,
                    )
                    latencies.append((time.perf_counter() - start) * 1000)
            # Both assessors mark the study done: the answers are revealed, consensus derived.
            for user in (first, second):
                qa.quality_complete_set(review=review, study=study, assessor=user)
        flags = ext.extraction_contribution_flags_create(review=review, actor=owner)
        ext.extraction_extractors_assign_bulk(
            review=review, extractors=[first, second], per_study=1, actor=owner
        )
        save_latencies = []
        for index, study in enumerate(studies):
            extractor = study.extraction_assignments.get().extractor
            for number, flag in enumerate(flags):
                start = time.perf_counter()
                ext.extraction_value_save(
                    review=review,
                    study=study,
                    field=flag,
                    extractor=extractor,
                    raw="yes" if (index + number) % 3 == 0 else "no",
                    seen_version=0,
                )
                save_latencies.append((time.perf_counter() - start) * 1000)
            ext.extraction_complete_set(review=review, study=study, extractor=extractor)
        latencies.sort()
        save_latencies.sort()
        result = {
            "studies": args.studies,
            "answers": len(latencies),
            "assign_bulk_ms": round(assign_ms, 1),
            "answer_record_ms": {
                "median": round(statistics.median(latencies), 2),
                "p95": round(latencies[int(len(latencies) * 0.95)], 2),
            },
            "extraction_value_save_ms": {
                "median": round(statistics.median(save_latencies), 2),
                "p95": round(save_latencies[int(len(save_latencies) * 0.95)], 2),
            },
            "table5_ms": timed(lambda: quality_table5(review=review, sort="total")),
            "overview_ms": timed(lambda: quality_overview(review=review, user=owner)),
            "synthesis_ms": timed(lambda: extraction_synthesis(review=review)),
            "extraction_table_ms": timed(lambda: extraction_table(review=review)),
        }
    finally:
        review.delete()
        users.filter(pk__in=[owner.pk, first.pk, second.pk]).delete()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
