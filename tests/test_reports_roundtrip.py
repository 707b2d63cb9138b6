"""The included-studies exports read back through our own importer lose nothing.

Runs once the import service (another area) is merged; skipped before.
"""

import pytest

from screening.models import Record, Source
from screening.selectors import reports as selectors

from .reports_helpers import seeded_module  # noqa: F401


@pytest.fixture
def seeded(seeded_module, db):  # noqa: F811 (the imported fixture, requested by name)
    review, cast, _ = seeded_module
    return review, cast


@pytest.mark.parametrize("fmt,file_name", [("ris", "included.ris"), ("bib", "included.bib")])
def test_export_reimports_with_the_same_fields(seeded, fmt, file_name):
    from screening.services import imports

    review, cast = seeded
    from screening.services.reviews import review_create

    target = review_create(slug=f"roundtrip-{fmt}", title="Round trip", owner=cast["owner"])
    source = Source.objects.create(review=target, name="Export")
    exported = selectors.included_export(review=review, fmt=fmt)
    batch = imports.batch_create(
        review=target,
        source=source,
        uploaded_by=cast["owner"],
        file_name=file_name,
        data=exported.encode(),
    )
    batch = imports.batch_run(batch_id=batch.id)
    assert batch.status == "done", batch.error
    assert batch.format == ("ris" if fmt == "ris" else "bibtex")

    originals = {c.doi: c for c in selectors.included_citations(review=review)}
    records = list(Record.objects.filter(review=target))
    assert len(records) == len(originals) == 30
    for record in records:
        original = originals[record.doi]
        assert record.title == original.title
        assert list(record.authors) == list(original.authors)
        assert record.year == original.year
        assert record.venue == original.venue
        assert record.abstract == original.abstract
