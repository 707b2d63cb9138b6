"""Backup export / restore of a review the size of the seed (1,905 records, 1,655 studies).

Run: DATABASE_URL=postgres://... .venv/bin/python benchmarks/protocol_bench.py
It creates a throwaway review `bench-backup` (and its copy), measures, then deletes both.
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slrweb.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402

from screening.models import Decision, ImportBatch, Record, Review, Source, Study  # noqa: E402
from screening.services.backup import review_export, review_import  # noqa: E402
from screening.services.reviews import review_create  # noqa: E402


def build() -> Review:
    users = get_user_model()
    owner, _ = users.objects.get_or_create(username="bench-owner")
    second, _ = users.objects.get_or_create(username="bench-reviewer")
    review = review_create(slug="bench-backup", title="Backup benchmark", owner=owner)
    source = Source.objects.create(review=review, name="ACM")
    batch = ImportBatch.objects.create(
        review=review, source=source, original_name="all.ris", sha256="b" * 64
    )
    studies = Study.objects.bulk_create(
        Study(review=review, title=f"Study {i}", abstract="word " * 150) for i in range(1655)
    )
    Record.objects.bulk_create(
        Record(
            review=review,
            batch=batch,
            study=studies[i % 1655],
            position=i + 1,
            title=f"Study {i % 1655}",
            abstract="word " * 150,
            raw={"TI": f"Study {i}", "AB": "word " * 150},
        )
        for i in range(1905)
    )
    title = review.stages.get(key="title")
    Decision.objects.bulk_create(
        Decision(review=review, study=study, stage=title, reviewer=user, verdict="exclude")
        for study in studies
        for user in (owner, second)
    )
    return review


def main() -> None:
    Review.objects.filter(slug__in=["bench-backup", "bench-copy"]).delete()
    review = build()
    started = time.perf_counter()
    data = review_export(review=review)
    text = json.dumps(data)
    exported = time.perf_counter() - started
    started = time.perf_counter()
    review_import(data=json.loads(text), slug="bench-copy")
    restored = time.perf_counter() - started
    print(
        json.dumps(
            {
                "records": len(data["records"]),
                "studies": len(data["studies"]),
                "decisions": len(data["decisions"]),
                "json_mb": round(len(text) / 1e6, 1),
                "export_seconds": round(exported, 2),
                "restore_seconds": round(restored, 2),
            }
        )
    )
    for slug in ("bench-backup", "bench-copy"):
        review = Review.objects.get(slug=slug)
        review.batches.all().delete()
        review.delete()


if __name__ == "__main__":
    main()
