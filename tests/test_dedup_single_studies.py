"""Studies of one record written by the server (PostgreSQL): a run's new study of one record
takes its display fields from its row in the database, not from the row sent to Python and
back. They must be exactly those `most_complete` gives the record (the rule every other study
follows), read back from the database: on edge cases, and on every real export."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from screening.models import Record, Study
from screening.selectors.study_list import studies_search
from screening.services import dedup as dedup_service
from screening.services.dedup import review_deduplicate
from screening.services.imports import source_resolve

from .dedup_helpers import STROKE, TRIAL, add_batch, paper
from .imports_helpers import export_import, media_root_fixture  # noqa: F401 (a fixture)
from .test_parsers_inventory import ROWS, SHARED_DATA

pytestmark = pytest.mark.django_db

DISPLAY_FIELDS = list(dedup_service.STUDY_FIELDS)


def study_fields(study_id: int) -> dict:
    return Study.objects.filter(pk=study_id).values(*DISPLAY_FIELDS).get()


def python_rule(record_id: int) -> dict:
    """What `most_complete` gives the record alone, from its row as stored."""
    row = Record.objects.filter(pk=record_id).values(*dedup_service.RECORD_FIELDS).get()
    return dedup_service._display_fields([row])


def single_record_studies(review) -> list[tuple[int, int]]:
    """(study, record) of each of the review's studies of one record."""
    pairs: dict[int, list[int]] = {}
    for record, study in Record.objects.filter(review=review).values_list("id", "study_id"):
        pairs.setdefault(study, []).append(record)
    return [(study, records[0]) for study, records in pairs.items() if len(records) == 1]


def test_a_study_of_one_record_holds_what_most_complete_gives_it(review):
    if connection.vendor != "postgresql":
        pytest.skip("the server writes these studies on PostgreSQL only")
    keywords = ["Stroke", "stroke", "STROKE!", "", "Rehabilitation", *[f"k{i}" for i in range(50)]]
    long_url = "https://example.org/" + "x" * 1200
    records = add_batch(
        review,
        "PubMed",
        [
            paper(
                STROKE,
                abstract="<b>Thromboprophylaxis</b> & heparin",
                authors=["Wolf, S. L.", "Winstein, C. J."],
                year=2006,
                venue="JAMA",
                doi="10.1001/jama.296.17.2095",
                pmid="17077374",
                url="https://example.org/excite",
                keywords=keywords,
                publication_type="Journal Article",
            ),
            paper(TRIAL, authors=[], year=None, url=long_url, keywords=[]),
            paper("Hip fracture surgery within 48 hours: a cohort study", year=0, keywords=[]),
            paper("", authors=["Nobody, N."], year=2019, keywords=["Only"]),
        ],
    )

    with CaptureQueriesContext(connection) as queries:
        review_deduplicate(review=review)

    # The keywords are copied by the server and cleaned afterwards: no record's row is read
    # again for them.
    assert not [q["sql"] for q in queries if '"screening_record"."keywords"' in q["sql"]]
    singles = single_record_studies(review)
    assert sorted(record for _, record in singles) == sorted(r.pk for r in records)
    for study, record in singles:
        assert study_fields(study) == python_rule(record)
    first = study_fields(Record.objects.get(pk=records[0].pk).study_id)
    assert first["keywords"] == ["Stroke", "Rehabilitation", *[f"k{i}" for i in range(38)]]
    assert first["abstract"] == "<b>Thromboprophylaxis</b> & heparin"
    assert first["authors"] == ["Wolf, S. L.", "Winstein, C. J."]
    second = study_fields(Record.objects.get(pk=records[1].pk).study_id)
    assert second["url"] == "" and second["year"] is None and second["authors"] == []
    assert study_fields(Record.objects.get(pk=records[2].pk).study_id)["year"] is None
    study = Study.objects.get(pk=Record.objects.get(pk=records[0].pk).study_id)
    assert study.outcome == Study.Outcome.SCREENING
    assert study.current_stage is not None and study.current_stage.is_entry
    assert study.created_at is not None and study.updated_at is not None
    assert list(studies_search(Study.objects.filter(review=review), "thromboprophylaxis")) == [
        study
    ]


def test_a_record_deleted_before_its_study_is_written_leaves_no_study(review, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the server writes these studies on PostgreSQL only")
    records = add_batch(
        review,
        "PubMed",
        [paper(STROKE), paper(TRIAL), paper("Early mobilisation after knee replacement")],
    )
    victim = records[1].pk
    insert = dedup_service._single_studies_insert

    def deleted_first(**kwargs):
        Record.objects.filter(pk=victim).delete()
        return insert(**kwargs)

    monkeypatch.setattr(dedup_service, "_single_studies_insert", deleted_first)

    counts = review_deduplicate(review=review)

    assert counts["records"] == counts["studies"] == 2
    assert not Study.objects.filter(review=review, records__isnull=True).exists()
    assert set(Record.objects.filter(review=review).values_list("study_id", flat=True)) == set(
        Study.objects.filter(review=review).values_list("id", flat=True)
    )


@pytest.mark.usefixtures("media_root")
@pytest.mark.skipif(not ROWS, reason="the shared real exports are not on this machine")
def test_every_real_exports_study_of_one_record_holds_what_most_complete_gives_it(review):
    if connection.vendor != "postgresql":
        pytest.skip("the server writes these studies on PostgreSQL only")
    source = source_resolve(review=review, name="Library")
    for row in ROWS:
        # An export refused (not one, or the same file twice) is passed over.
        export_import(review, source, SHARED_DATA / row["path"])

    review_deduplicate(review=review)

    singles = single_record_studies(review)
    assert len(singles) > 3000
    differing = [record for study, record in singles if study_fields(study) != python_rule(record)]
    assert not differing, differing[:10]
