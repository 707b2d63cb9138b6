"""Search rounds: opening an update, importing real overlapping exports into it, the diff of
new / already-in-the-review / changed records, decisions carried forward, and the pages."""

import datetime
import re

import pytest
from django.core.exceptions import ValidationError

from screening.models import (
    AuditEvent,
    Decision,
    FunnelSchedule,
    Record,
    SearchRound,
    SearchRun,
    Study,
)
from screening.selectors.rounds import round_diff
from screening.selectors.screening import stage_get
from screening.services.dedup import review_deduplicate
from screening.services.imports import batch_create, batch_run, source_resolve
from screening.services.protocol import search_run_set
from screening.services.rounds import RoundRun, round_open
from screening.services.screening import decision_record, study_claim_next

from .conftest import SHARED_DATA
from .imports_helpers import (  # noqa: F401 (fixtures are found by name)
    media_root_fixture,
    sent_tasks_fixture,
)

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
        seen_version=0,
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
        seen_version=0,
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
        round_open(review=review, user=cast["owner"], run_on=run_on, runs=given, seen_version=0)
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
        seen_version=1,
    )
    assert (second.number, third.number) == (2, 3)


def test_a_round_opened_meanwhile_is_not_opened_twice(review, cast, client_for, round_one):
    """Two owners' tabs both showing "open round 2": the second post is refused (409) with the
    round the first opened; applying it anyway opens round 3 and says so in the audit."""
    string, pubmed = round_one["string"], round_one["pubmed"]
    form = {"version": "0", "run_on": "2020-06-01", f"hits_{string.pk}_{pubmed.pk}": "9"}
    owner = client_for("owner")
    assert owner.post(round_url(review), form).status_code == 302
    stale = owner.post(round_url(review), {**form, "run_on": "2020-07-01"})
    assert stale.status_code == 409
    assert "round 2 was opened on" in stale.content.decode()
    assert SearchRound.objects.filter(review=review).count() == 1
    forced = owner.post(round_url(review), {**form, "run_on": "2020-07-01", "force": "1"})
    assert forced.status_code == 302
    assert list(review.search_rounds.values_list("number", flat=True)) == [2, 3]
    event = AuditEvent.objects.get(action="search_round.overwrite")
    assert (event.before, event.after) == ({"version": 1, "seen_version": 0}, {"number": 3})


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


# ----- pages ---------------------------------------------------------------------------------


def round_url(review, number=None):
    if number is None:
        return f"/r/{review.slug}/rounds/"
    return f"/r/{review.slug}/rounds/{number}/"


def test_rounds_page_for_members_only(review, client, client_for, round_one):
    assert client.get(round_url(review)).status_code == 302  # to the login page
    assert client_for("outsider").get(round_url(review)).status_code == 404
    viewer_page = client_for("viewer").get(round_url(review))
    assert viewer_page.status_code == 200
    assert b"round-open-form" not in viewer_page.content
    owner_page = client_for("owner").get(round_url(review))
    assert b"round-open-form" in owner_page.content
    assert client_for("owner").delete(round_url(review)).status_code == 405


def test_owner_opens_a_round_from_the_page(review, cast, client_for, round_one):
    string, scopus = round_one["string"], round_one["scopus"]
    pubmed = round_one["pubmed"]
    form = {
        "version": "0",
        "run_on": "2020-06-01",
        "note": "Update",
        f"hits_{string.pk}_{pubmed.pk}": "12",
        f"hits_{string.pk}_{scopus.pk}": "286",
    }
    assert client_for("reviewer").post(round_url(review), form).status_code == 403
    response = client_for("owner").post(round_url(review), form)
    assert response.status_code == 302 and response["Location"] == round_url(review, 2)
    stored = SearchRound.objects.get(review=review)
    runs = stored.runs.order_by("source__name")
    assert [(r.source, r.hits_reported) for r in runs] == [(pubmed, 12), (scopus, 286)]
    # After a reload, as another member, the round is listed with its run.
    page = client_for("viewer").get(round_url(review))
    assert b'data-round="2"' in page.content


@pytest.mark.parametrize(
    "form,message",
    [
        ({"run_on": "2020-06-01"}, "Give the hits of at least one search"),
        ({"run_on": "2019-01-01", "hits": "4"}, "a new round&#x27;s searches must be run after"),
        ({"run_on": "not a date", "hits": "4"}, "Enter a valid date"),
        ({"run_on": "2020-06-01", "hits": "-1"}, "greater than or equal to 0"),
    ],
)
def test_bad_round_form_says_why_and_saves_nothing(review, client_for, round_one, form, message):
    data = {"run_on": form["run_on"]}
    if "hits" in form:
        data[f"hits_{round_one['string'].pk}_{round_one['pubmed'].pk}"] = form["hits"]
    response = client_for("owner").post(round_url(review), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not SearchRound.objects.exists()


def test_round_import_through_the_page_then_the_diff(
    review, cast, client_for, round_one, sent_tasks
):
    search_round = open_round_two(review, cast["owner"], round_one)
    scopus_run = search_round.runs.get(source=round_one["scopus"])
    owner = client_for("owner")
    with SCOPUS.open("rb") as upload:
        response = owner.post(round_url(review, 2), {"files": upload, "search_run": scopus_run.pk})
    assert response.status_code == 302
    batch = scopus_run.batches.get()
    assert batch.source == round_one["scopus"] and batch.uploaded_by == cast["owner"]
    waiting = owner.get(round_url(review, 2))
    assert b'data-unfinished="true"' in waiting.content  # the fragment polls meanwhile
    batch_run(batch_id=batch.pk)
    review_deduplicate(review=review)
    page = client_for("viewer").get(round_url(review, 2)).content.decode()
    assert 'data-count="records">286<' in page
    assert 'data-count="new">205 records, 205 new studies' in page
    assert 'data-count="existing">63<' in page and 'data-count="changed">18<' in page
    assert 'data-unfinished="false"' in page
    changed = client_for("viewer").get(round_url(review, 2) + "?show=changed").content.decode()
    assert changed.count("<tr data-record=") == 18
    assert "Identifying restoration priorities" in changed  # the earlier record beside it


def test_round_import_refuses_a_run_of_another_round(review, cast, client_for, round_one):
    search_round = open_round_two(review, cast["owner"], round_one)
    round_one_run = SearchRun.objects.get(review=review, round=None)
    with SCOPUS.open("rb") as upload:
        response = client_for("owner").post(
            round_url(review, search_round.number),
            {"files": upload, "search_run": round_one_run.pk},
        )
    assert response.status_code == 400
    assert "Choose one of this round" in response.content.decode()
    assert not Record.objects.filter(batch__search_run__round=search_round).exists()
    assert review.batches.count() == 1
    assert client_for("viewer").post(round_url(review, 2), {}).status_code == 403
    assert client_for("outsider").get(round_url(review, 2)).status_code == 404
    assert client_for("owner").get(round_url(review, 3)).status_code == 404


def test_an_update_with_nothing_new_says_so(review, cast, client_for, round_one, media_root):
    search_round = open_round_two(review, cast["owner"], round_one)
    # PubMed's own export again, re-saved: a different file holding the same records.
    data = PUBMED.read_bytes() + b"\n"
    batch = batch_create(
        review=review,
        source=round_one["pubmed"],
        uploaded_by=cast["owner"],
        file_name="pubmed-again.nbib",
        data=data,
        search_run=search_round.runs.get(source=round_one["pubmed"]),
        enqueue=False,
    )
    batch_run(batch_id=batch.pk)
    review_deduplicate(review=review)
    page = client_for("owner").get(round_url(review, 2)).content.decode()
    assert "This update brought no new records: all 104 are already in the review" in page
    assert Study.objects.filter(review=review).count() == 104


def test_diff_shows_only_the_decisions_the_member_may_see(
    review, cast, client_for, round_one, round_two
):
    title = stage_get(review=review, key="title")
    diff = round_diff(review=review, search_round=round_two)
    record = Record.objects.get(pk=diff.existing[0])
    study = record.study
    assert not Decision.objects.filter(study=study).exists()
    decision_record(
        review=review, study=study, stage=title, reviewer=cast["reviewer"], verdict="include"
    )
    pages = {
        name: client_for(name).get(round_url(review, 2) + "?show=existing").content.decode()
        for name in ("reviewer", "reviewer2", "viewer")
    }
    row = f'<tr data-record="{record.pk}">'
    for name, page in pages.items():
        part = page[page.index(row) :].split("</tr>")[0]
        assert ("reviewer — Include" in part) == (name == "reviewer"), name


def _ieee_round(review, cast, round_one):
    """Round 2 re-runs the string in IEEE Xplore (a source named after another library)."""
    ieee = source_resolve(review=review, name="IEEE Xplore", actor=cast["owner"])
    return round_open(
        review=review,
        user=cast["owner"],
        run_on=datetime.date(2020, 6, 1),
        runs=[RoundRun(search_string=round_one["string"], source=ieee, hits_reported=100)],
        seen_version=0,
    )


def test_another_librarys_export_is_refused_whole(review, cast, client_for, round_one, sent_tasks):
    """A Scopus CSV uploaded into the IEEE Xplore run, beside a real IEEE export: the page
    says which library the file is from, and neither file is kept."""
    search_round = _ieee_round(review, cast, round_one)
    run = search_round.runs.get()
    batches = review.batches.count()
    exports = SHARED_DATA / "exports/litstudy"
    with (exports / "ieee_1.csv").open("rb") as ieee, (exports / "scopus.csv").open("rb") as scopus:
        response = client_for("owner").post(
            round_url(review, 2), {"files": [ieee, scopus], "search_run": run.pk}
        )
    assert response.status_code == 400
    page = response.content.decode()
    assert "scopus.csv: this is a Scopus export, not IEEE Xplore&#x27;s" in page
    assert "ieee_1.csv:" not in page
    assert review.batches.count() == batches
    assert not run.batches.exists()
    assert not AuditEvent.objects.filter(action="import.upload", after__search_run=run.pk).exists()
    # The IEEE export alone goes in.
    with (exports / "ieee_1.csv").open("rb") as ieee:
        response = client_for("owner").post(
            round_url(review, 2), {"files": ieee, "search_run": run.pk}
        )
    assert response.status_code == 302
    assert list(run.batches.values_list("original_name", flat=True)) == ["ieee_1.csv"]


def test_a_refused_second_file_leaves_the_first_out_too(review, cast, round_one, media_root):
    """Two files in one upload, the second refused by the import checks (the same file twice):
    all or none, so the first is not kept either, nor its stored copy."""
    from screening.services.rounds import RoundFile, round_files_add

    search_round = open_round_two(review, cast["owner"], round_one)
    run = search_round.runs.get(source=round_one["scopus"])
    data = SCOPUS.read_bytes()
    with pytest.raises(ValidationError, match="second.ris: This file was already uploaded"):
        round_files_add(
            review=review,
            search_run=run,
            user=cast["owner"],
            files=[RoundFile("first.ris", data), RoundFile("second.ris", data)],
        )
    assert not run.batches.exists()
    assert not any(media_root.rglob("*.ris"))


def test_opening_a_round_asks_for_the_updated_funnel(
    review, cast, round_one, sent_tasks, django_capture_on_commit_callbacks
):
    """The funnel becomes an updated review's once a round is opened, even before any file:
    the round's searches found nothing yet, the previous version holds every study."""
    with django_capture_on_commit_callbacks(execute=True):
        open_round_two(review, cast["owner"], round_one)
    assert "screening.funnel_refresh" in sent_tasks.names()
    assert FunnelSchedule.objects.get(review=review).requested_at is not None
