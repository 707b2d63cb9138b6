"""Search rounds: opening an update, importing real overlapping exports into it, the diff of
new / already-in-the-review / changed records, decisions carried forward, and the pages."""

import datetime
import re

import pytest
from django.core.exceptions import ValidationError

from screening.models import AuditEvent, Decision, Record, SearchRound, SearchRun, Study
from screening.selectors.rounds import round_diff
from screening.selectors.screening import stage_get
from screening.services.dedup import review_deduplicate
from screening.services.imports import batch_create, batch_run, source_resolve
from screening.services.protocol import search_run_set
from screening.services.rounds import RoundRun, round_open
from screening.services.screening import decision_record, study_claim_next

from .conftest import SHARED_DATA
from .imports_helpers import media_root_fixture  # noqa: F401 (fixtures are found by name)

RESTORATION = SHARED_DATA / "exports/revtools-restoration"
PUBMED = RESTORATION / "restoration_pubmed.nbib"  # round 1: 104 records
SCOPUS = RESTORATION / "restoration_scopus.ris"  # round 2: 286 records, 81 DOIs shared
STRING = "(restoration OR rehabilitation) AND ecolog*"


def _dois(path, pattern) -> set[str]:
    """The DOIs of an export read with a regular expression, independently of the app."""
    text = path.read_text(encoding="utf-8", errors="replace")
    return {doi.lower() for doi in re.findall(pattern, text, re.M)}


def import_into(review, user, run, path):
    batch = batch_create(
        review=review,
        source=run.source,
        uploaded_by=user,
        file_name=path.name,
        data=path.read_bytes(),
        search_run=run,
        enqueue=False,
    )
    batch = batch_run(batch_id=batch.pk)
    assert batch.status == "done", batch.error
    review_deduplicate(review=review)
    return batch


@pytest.fixture
def round_one(review, cast, media_root):
    """Round 1: the PubMed search imported and deduplicated, with every study that the Scopus
    update will find again excluded at title screening by both reviewers."""
    owner = cast["owner"]
    string = review.search_strings.create(text=STRING, position=0)
    pubmed = source_resolve(review=review, name="PubMed", actor=owner)
    scopus = source_resolve(review=review, name="Scopus", actor=owner)
    run = search_run_set(
        review=review,
        actor=owner,
        search_string=string,
        source=pubmed,
        run_on=datetime.date(2019, 6, 1),
        hits_reported=104,
    )
    import_into(review, owner, run, PUBMED)
    shared = _dois(PUBMED, r"^LID - (\S+) \[doi\]") & _dois(SCOPUS, r"^DO  - (\S+)")
    title = stage_get(review=review, key="title")
    excluded = list(Study.objects.filter(review=review, doi__in=shared).order_by("id")[:5])
    for study in excluded:
        for reviewer in (cast["reviewer"], cast["reviewer2"]):
            decision_record(
                review=review, study=study, stage=title, reviewer=reviewer, verdict="exclude"
            )
    return {"string": string, "pubmed": pubmed, "scopus": scopus, "excluded": excluded}


def open_round_two(review, owner, round_one):
    return round_open(
        review=review,
        user=owner,
        run_on=datetime.date(2020, 6, 1),
        runs=[
            RoundRun(
                search_string=round_one["string"], source=round_one["pubmed"], hits_reported=0
            ),
            RoundRun(
                search_string=round_one["string"], source=round_one["scopus"], hits_reported=286
            ),
        ],
        note="One-year update",
    )


@pytest.fixture
def round_two(review, cast, round_one):
    search_round = open_round_two(review, cast["owner"], round_one)
    run = search_round.runs.get(source=round_one["scopus"])
    import_into(review, cast["owner"], run, SCOPUS)
    return search_round


def test_open_round_creates_one_run_per_string_and_source_and_is_audited(review, cast, round_one):
    search_round = open_round_two(review, cast["owner"], round_one)
    stored = SearchRound.objects.get(pk=search_round.pk)
    assert (stored.number, stored.opened_by, stored.note) == (2, cast["owner"], "One-year update")
    runs = SearchRun.objects.filter(round=stored).order_by("source__name")
    assert [(r.source.name, r.run_on, r.hits_reported) for r in runs] == [
        ("PubMed", datetime.date(2020, 6, 1), 0),
        ("Scopus", datetime.date(2020, 6, 1), 286),
    ]
    # Round 1's run is untouched and still has no round.
    assert SearchRun.objects.filter(review=review, round=None).count() == 1
    event = AuditEvent.objects.get(action="search_round.open")
    assert (event.actor, event.after["number"], len(event.after["runs"])) == (
        cast["owner"],
        2,
        2,
    )


@pytest.mark.parametrize(
    "run_on,runs,message",
    [
        (datetime.date(2020, 6, 1), "none", "at least one search"),
        (datetime.date(2019, 6, 1), "pubmed", "last run in PubMed on 2019-06-01"),
        (datetime.date.today() + datetime.timedelta(days=1), "pubmed", "in the future"),
        (datetime.date(2020, 6, 1), "twice", "once per source"),
    ],
)
def test_bad_round_is_refused_and_leaves_nothing(review, cast, round_one, run_on, runs, message):
    string, source = round_one["string"], round_one["pubmed"]
    pubmed = RoundRun(search_string=string, source=source, hits_reported=3)
    given = {"none": [], "pubmed": [pubmed], "twice": [pubmed, pubmed]}[runs]
    with pytest.raises(ValidationError, match=message):
        round_open(review=review, user=cast["owner"], run_on=run_on, runs=given)
    assert not SearchRound.objects.exists()
    assert SearchRun.objects.filter(review=review).count() == 1
    assert not AuditEvent.objects.filter(action="search_round.open").exists()


def test_round_numbers_follow_each_other(review, cast, round_one):
    second = open_round_two(review, cast["owner"], round_one)
    third = round_open(
        review=review,
        user=cast["owner"],
        run_on=datetime.date(2021, 6, 1),
        runs=[
            RoundRun(search_string=round_one["string"], source=round_one["pubmed"], hits_reported=1)
        ],
    )
    assert (second.number, third.number) == (2, 3)


def test_round_two_diff_of_real_overlapping_exports(review, round_two):
    diff = round_diff(review=review, search_round=round_two)
    records = Record.objects.filter(batch__search_run__round=round_two)
    assert diff.records == records.count() == 286
    assert diff.pending == 0
    # The kinds are disjoint and cover the round.
    assert len(diff.new) + len(diff.existing) + len(diff.changed) == 286
    # Every record with a DOI PubMed also had is already in the review.
    shared = _dois(PUBMED, r"^LID - (\S+) \[doi\]") & _dois(SCOPUS, r"^DO  - (\S+)")
    already = set(diff.existing) | set(diff.changed)
    shared_records = {r.pk for r in records if r.doi.lower() in shared}
    assert len(shared) == 81 and shared_records <= already
    # A "new" record's study has no record from round 1; an earlier one's has.
    for record in records.filter(pk__in=diff.new):
        assert not record.study.records.filter(batch__search_run__round=None).exists()
    for record_id in already:
        assert Record.objects.get(pk=diff.earlier[record_id]).batch.search_run.round is None
    assert (len(diff.new), diff.new_studies, len(diff.existing), len(diff.changed)) == (
        205,
        205,
        63,
        18,
    )
    # A title Scopus mangled ("Identify ingrestoration") is told as a title change only; a
    # copyright line or "15 years" written "15years" is no change.
    mangled = records.get(title__startswith="Identify ingrestoration priorities")
    assert diff.changed[mangled.pk] == ("title",)
    assert Record.objects.get(pk=diff.earlier[mangled.pk]).title.startswith("Identifying")
    island = records.get(title__startswith="Island development in a mountain river")
    assert island.abstract.endswith("© 2019 Elsevier B.V.") and island.pk in diff.existing


def test_decisions_carry_forward_and_only_new_studies_enter_screening(
    review, cast, round_one, round_two
):
    title = stage_get(review=review, key="title")
    diff = round_diff(review=review, search_round=round_two)
    already = set(diff.existing) | set(diff.changed)
    for study in round_one["excluded"]:
        study.refresh_from_db()
        # Found again by Scopus, still excluded with its two decisions and nothing more.
        assert study.records.filter(pk__in=already).exists()
        assert study.outcome == Study.Outcome.EXCLUDED
        assert Decision.objects.filter(study=study).count() == 2
    new_studies = Study.objects.filter(records__pk__in=diff.new).distinct()
    assert new_studies.count() == 205
    assert set(new_studies.values_list("current_stage", "outcome").distinct()) == {
        (title.pk, Study.Outcome.SCREENING)
    }
    # The queue hands out round 1's undecided studies and the new ones, never a decided one.
    excluded_ids = {s.pk for s in round_one["excluded"]}
    undecided = Study.objects.filter(review=review, current_stage=title, outcome="screening")
    assert undecided.count() == 104 - 5 + 205  # PubMed's 104 records were 104 studies
    assert not set(undecided.values_list("pk", flat=True)) & excluded_ids
    handed = set()
    for _ in range(3):
        study = study_claim_next(review=review, stage=title, reviewer=cast["reviewer"])
        handed.add(study.pk)
        decision_record(
            review=review, study=study, stage=title, reviewer=cast["reviewer"], verdict="include"
        )
    assert not handed & excluded_ids
