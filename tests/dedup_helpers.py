"""Helpers for the deduplication tests: records inserted through the ORM (the import service
is another area's), a few bibliographic records with known duplicates."""

import hashlib

from screening.models import ImportBatch, Record, Source

TRIAL = "Eculizumab in atypical haemolytic uraemic syndrome: a prospective multicentre trial"
STROKE = "Constraint-induced movement therapy after stroke: a randomised controlled trial"
APHASIA = "Intensive speech and language therapy in chronic aphasia after stroke"


def add_batch(review, source_name: str, records: list[dict]) -> list[Record]:
    source, _ = Source.objects.get_or_create(review=review, name=source_name)
    digest = hashlib.sha256(repr((source_name, records, ImportBatch.objects.count())).encode())
    batch = ImportBatch.objects.create(
        review=review,
        source=source,
        file=f"imports/{source_name}.ris",
        original_name=f"{source_name}.ris",
        sha256=digest.hexdigest(),
        format="ris",
        status=ImportBatch.Status.DONE,
        records_read=len(records),
    )
    return [
        Record.objects.create(
            review=review,
            batch=batch,
            position=i,
            raw={"title": fields.get("title", "")},
            **fields,
        )
        for i, fields in enumerate(records, start=1)
    ]


def paper(title: str, **fields) -> dict:
    fields.setdefault("year", 2012)
    fields.setdefault("authors", ["Legendre, C. M.", "Licht, C."])
    fields.setdefault("venue", "N Engl J Med")
    return {"title": title, **fields}
