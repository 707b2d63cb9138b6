"""Full backup: export_review / import_review restore a review exactly, or nothing at all."""

import datetime
import gzip
import importlib
import io
import json
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from screening.models import (
    Adjudicator,
    AuditEvent,
    Criterion,
    Decision,
    DuplicateCandidate,
    ExtractionAssignment,
    ExtractionField,
    ExtractionValue,
    FullText,
    FunnelSchedule,
    FunnelSnapshot,
    ImportBatch,
    QualityAnswer,
    QualityAssignment,
    QualityConsensus,
    RankingRun,
    RankingSettings,
    Record,
    Resolution,
    Review,
    ScreeningClaim,
    SearchRun,
    Study,
    StudyMerge,
    StudyPriority,
)
from screening.services import backup
from screening.services import protocol as services
from screening.services.dedup import studies_merge, study_unmerge
from screening.services.rounds import RoundRun, round_open


@pytest.fixture
def full_review(review, cast):
    """A review holding at least one row of every model the app has."""
    owner, r1, r2 = cast["owner"], cast["reviewer"], cast["reviewer2"]
    lists = services.ORDERED_LISTS

    def add(key, **values):
        return services.protocol_item_create(
            review=review, actor=owner, spec=lists[key], values=values
        )

    rq = add("research-questions", code="RQ1", text="How?", theme="Lifecycle")
    add("inclusion", code="IC1", text="About MLOps")
    ec1 = add("exclusion", code="EC1", text="Not English")
    qc1 = add("quality", code="QC1", text="Clear aims?")
    acm = add("sources", name="ACM")
    string = add("search-strings", text='"MLOps"')
    run = services.search_run_set(
        review=review,
        actor=owner,
        search_string=string,
        source=acm,
        run_on=datetime.date(2021, 7, 31),
        hits_reported=5,
        seen_version=0,
    )
    services.review_update(
        review=review, actor=owner, values={"quality_threshold": Decimal("2.5")}, seen_version=1
    )
    round_open(
        review=review,
        user=owner,
        run_on=datetime.date(2022, 7, 31),
        runs=[RoundRun(search_string=string, source=acm, hits_reported=7)],
        seen_version=0,
    )
    batch = ImportBatch.objects.create(
        review=review,
        source=acm,
        search_run=run,
        uploaded_by=r1,
        file="imports/2021/07/acm.ris",
        original_name="acm.ris",
        size_bytes=1234,
        sha256="a" * 64,
        format="ris",
        status="done",
        progress=100,
        records_read=3,
        with_title=3,
        with_abstract=2,
        report={"warnings": ["entry 3 has no year"]},
        started_at=timezone.now(),
        finished_at=timezone.now(),
        column_map={"title": "Document Title"},
        attempts=2,
    )
    title = review.stages.get(key="title")
    full_text = review.stages.get(key="full_text")
    s1 = Study.objects.create(
        review=review, title="MLOps in practice", year=2020, outcome="included"
    )
    s2 = Study.objects.create(review=review, title="Other", current_stage=title, authors=["A. B"])
    # Ranked in its stage's queue (StudyPriority; carried as the study row's "priority").
    StudyPriority.objects.create(study=s2, stage=title, priority=0.25)
    records = [
        Record.objects.create(
            review=review,
            batch=batch,
            study=study,
            position=position,
            title=f"Record {position}",
            doi=f"10.1/{position}",
            raw={"TI": f"Record {position}", "AU": ["X"]},
        )
        for position, study in [(1, s1), (2, s1), (3, s2)]
    ]
    DuplicateCandidate.objects.create(
        review=review,
        record_a=records[1],
        record_b=records[2],
        score=0.87,
        reason="title 0.87",
        status="not_duplicate",
        decided_by=owner,
        decided_at=timezone.now(),
    )
    for reviewer in (r1, r2):
        Decision.objects.create(
            review=review, study=s1, stage=title, reviewer=reviewer, verdict="include", note="ok"
        )
    excluded = Decision.objects.create(
        review=review, study=s2, stage=title, reviewer=r1, verdict="exclude"
    )
    excluded.reasons.add(ec1, Criterion.objects.get(review=review, code="DUPLICATE"))
    Resolution.objects.create(
        review=review, study=s1, stage=title, verdict="include", method="agreement"
    )
    adjudicated = Resolution.objects.create(
        review=review,
        study=s1,
        stage=full_text,
        verdict="include",
        method="adjudication",
        decided_by=owner,
    )
    adjudicated.reasons.add(ec1)
    FullText.objects.create(study=s2, status="not_retrievable", reason="paywall", recorded_by=r2)
    QualityAnswer.objects.create(study=s1, criterion=qc1, assessor=r1, answer=Decimal("1"))
    QualityConsensus.objects.create(
        study=s1, criterion=qc1, answer=Decimal("0.5"), decided_by=owner
    )
    field = ExtractionField.objects.create(
        review=review,
        research_question=rq,
        key="tools",
        label="Tools",
        kind="multi_choice",
        choices=["MLflow", "Kubeflow"],
    )
    ExtractionValue.objects.create(study=s1, field=field, extractor=r1, value=["MLflow"])
    ExtractionValue.objects.create(
        study=s1, field=field, extractor=None, value=["MLflow"], reconciled_by=owner
    )
    FunnelSnapshot.objects.create(review=review, data={"database_results": 3})
    Adjudicator.objects.create(review=review, user=r2, designated_by=owner)
    RankingSettings.objects.create(stage=title, retrain_every=5, stop_after_irrelevant=40)
    QualityAssignment.objects.create(study=s1, slot=1, assessor=r1, assigned_by=owner)
    ExtractionAssignment.objects.create(
        study=s1, slot=1, extractor=r1, assigned_by=owner, completed_at=timezone.now()
    )
    RankingRun.objects.create(
        review=review,
        stage=title,
        status="done",
        model_name="nb",
        requested_by=r1,
        decisions_seen=10,
        labelled=10,
        relevant=2,
        scored=40,
        train_seconds=0.5,
        finished_at=timezone.now(),
    )
    # In flight: not carried (no worker would run it after a restore).
    RankingRun.objects.create(review=review, stage=title, status="pending", decisions_seen=15)
    FunnelSchedule.objects.create(review=review, requested_at=timezone.now())
    # A study screened a little, then merged into s1: the merge keeps it (with old ids) for an
    # unmerge. Its claim is transient and is not carried.
    s3 = Study.objects.create(
        review=review, title="MLOps in practice (preprint)", current_stage=title
    )
    Record.objects.create(review=review, batch=batch, study=s3, position=4, title="Preprint")
    StudyPriority.objects.create(study=s3, stage=title, priority=0.75)  # left out of the snapshot
    claimed = timezone.now()
    ScreeningClaim.objects.create(
        review=review,
        study=s3,
        stage=title,
        reviewer=r1,
        claimed_at=claimed,
        expires_at=claimed + datetime.timedelta(minutes=10),
    )
    absorbed = Decision.objects.create(
        review=review, study=s3, stage=title, reviewer=r2, verdict="exclude", note="preprint"
    )
    absorbed.reasons.add(ec1)
    QualityAnswer.objects.create(study=s3, criterion=qc1, assessor=r2, answer=Decimal("0"))
    studies_merge(review=review, first=s1, second=s3, user=owner)
    return review


def canonical(data: dict) -> dict:
    """The backup with every id replaced by its rank in its table (ids change on restore)."""
    data = json.loads(json.dumps(data))
    ranks = {}
    for table in backup.TABLES:
        rows = backup.section_rows(data, table)
        ranks[table.key] = {
            row["id"]: index for index, row in enumerate(sorted(rows, key=lambda r: r["id"]))
        }
    absent: dict[str, dict] = {}

    def rank(table_key, old, how):
        # Rows a merge snapshot holds are not in any table: named by order of appearance.
        if old in ranks[table_key]:
            return ranks[table_key][old]
        labels = absent.setdefault(table_key, {})
        return labels.setdefault(old, f"absent-{len(labels)}")

    for table in backup.TABLES:
        for row in backup.section_rows(data, table):
            row["id"] = ranks[table.key][row["id"]]
            for attname, target in table.refs.items():
                name = attname.removesuffix("_id")
                if row[name] is not None:
                    row[name] = ranks[target][row[name]]
            if table.model is AuditEvent:
                target = backup.TABLE_BY_MODEL_NAME.get(row["object_type"])
                if (
                    target
                    and row["object_id"].isdigit()
                    and int(row["object_id"]) in ranks[target.key]
                ):
                    row["object_id"] = ranks[target.key][int(row["object_id"])]
                elif row["object_type"] == "review":
                    row["object_id"] = "review"
        for index, row in enumerate(backup.section_rows(data, table)):
            row.update(
                backup.extra_ids_convert(
                    table,
                    row,
                    id_for=rank,
                    user_for=lambda username: username,
                    review_id="review",
                    where=str(index),
                )
            )
        backup.section_rows(data, table).sort(key=lambda r: r["id"])
    return data


def test_backup_covers_every_model():
    """Each model is carried or declared not carried, with a reason; never both."""
    app_models = set(apps.get_app_config("screening").get_models())
    assert app_models == backup.declared_models()
    not_carried = {item.model for item in backup.NOT_CARRIED}
    assert not not_carried & backup.covered_models()
    assert all(item.reason.strip() for item in backup.NOT_CARRIED)


def test_every_relation_is_remapped_on_restore():
    assert backup.undeclared_relations() == []


def test_export_holds_every_kind_of_object(full_review):
    data = backup.review_export(review=full_review)
    assert (data["format"], data["version"]) == ("slrweb-review", 1)
    for key in (
        "stages",
        "criteria",
        "quality_criteria",
        "research_questions",
        "members",
        "search_strings",
        "adjudicators",
        "ranking_settings",
    ):
        assert data["protocol"][key], key
    for key in (
        "sources",
        "search_runs",
        "batches",
        "records",
        "studies",
        "decisions",
        "resolutions",
        "full_texts",
        "quality_answers",
        "quality_consensus",
        "extraction_fields",
        "extraction_values",
        "audit_events",
        "duplicate_candidates",
        "funnel_snapshots",
        "quality_assignments",
        "extraction_assignments",
        "ranking_runs",
        "study_merges",
    ):
        assert data[key], key
    # Transient machinery stays behind: claims, the funnel's debounce row, in-flight trainings.
    assert "claims" not in data and "funnel_schedule" not in data
    assert [run["status"] for run in data["ranking_runs"]] == ["done"]
    assert data["batches"][0]["column_map"] == {"title": "Document Title"}
    assert data["batches"][0]["attempts"] == 2
    reconciled = next(v for v in data["extraction_values"] if v["extractor"] is None)
    assert reconciled["reconciled_by"] == "owner"
    assert data["protocol"]["adjudicators"][0]["user"] == "reviewer2"
    # The merge snapshot names users by username and leaves the absorbed study's claim out.
    merge = data["study_merges"][0]
    models = [item["model"] for item in merge["snapshot"]["absorbed"]]
    assert "screening.screeningclaim" not in models
    assert {"screening.study", "screening.decision", "screening.qualityanswer"} <= set(models)
    decision = next(i for i in merge["snapshot"]["absorbed"] if i["model"] == "screening.decision")
    assert decision["fields"]["reviewer"] == "reviewer2"
    assert data["search_runs"][0]["hits_reported"] == 5
    assert data["records"][0]["raw"] == {"TI": "Record 1", "AU": ["X"]}
    assert data["batches"][0]["file"] == "imports/2021/07/acm.ris"
    excluded = next(d for d in data["decisions"] if d["verdict"] == "exclude")
    assert excluded["reasons"] == ["DUPLICATE", "EC1"] and excluded["reviewer"] == "reviewer"
    assert {m["user"] for m in data["protocol"]["members"]} == {
        "owner",
        "reviewer",
        "reviewer2",
        "viewer",
    }
    assert data["protocol"]["review"]["quality_threshold"] == "2.50"


def test_round_trip_into_an_empty_database_is_exact(full_review):
    exported = json.loads(json.dumps(backup.review_export(review=full_review)))
    ImportBatch.objects.all().delete()  # its source is protected while it exists
    Review.objects.all().delete()
    get_user_model().objects.all().delete()
    restored = backup.review_import(data=exported)
    again = backup.review_export(review=restored)
    assert canonical(again) == canonical(exported)
    # Missing users come back inactive and cannot log in until an admin sets a password.
    reviewer = get_user_model().objects.get(username="reviewer")
    assert not reviewer.is_active and not reviewer.has_usable_password()
    assert reviewer.email == "reviewer@example.org"
    # Timestamps are the stored ones, not the restore's.
    assert again["decisions"][0]["created_at"] == exported["decisions"][0]["created_at"]
    assert again["created_at"] == exported["created_at"]
    assert again["created_by"] == "owner"
    pair = DuplicateCandidate.objects.get()
    assert pair.record_a_id < pair.record_b_id


def _absorbed(review) -> tuple[StudyMerge, Study]:
    merge = StudyMerge.objects.get(review=review, undone_at__isnull=True)
    return merge, merge.kept


def test_unmerge_after_a_restore_into_an_empty_database_brings_the_study_back(full_review):
    exported = json.loads(json.dumps(backup.review_export(review=full_review)))
    ImportBatch.objects.all().delete()
    Review.objects.all().delete()
    get_user_model().objects.all().delete()
    restored = backup.review_import(data=exported)
    owner = get_user_model().objects.get(username="owner")
    merge, kept = _absorbed(restored)
    # A study created after the restore never takes the id kept for the absorbed one.
    later = Study.objects.create(review=restored, title="Imported later")
    assert later.pk != merge.absorbed_study_id
    study = study_unmerge(review=restored, merge=merge, user=owner)
    assert study.pk == merge.absorbed_study_id and study.review_id == restored.pk
    assert study.title == "MLOps in practice (preprint)"
    assert Study.objects.get(pk=later.pk).title == "Imported later"
    assert list(study.records.values_list("title", flat=True)) == ["Preprint"]
    decision = study.decisions.get()
    assert (decision.reviewer.username, decision.verdict, decision.note) == (
        "reviewer2",
        "exclude",
        "preprint",
    )
    assert [c.code for c in decision.reasons.all()] == ["EC1"]
    assert decision.reasons.get().review_id == restored.pk
    assert decision.stage.review_id == restored.pk
    assert study.quality_answers.get().criterion.review_id == restored.pk
    assert not ScreeningClaim.objects.exists()
    assert kept.records.count() == 2  # its own two, the preprint moved back


def test_unmerge_in_a_copy_leaves_the_original_alone(full_review):
    copy = backup.review_import(data=backup.review_export(review=full_review), slug="copy")
    owner = get_user_model().objects.get(username="owner")
    original_merge, _ = _absorbed(full_review)
    copy_merge, _ = _absorbed(copy)
    assert copy_merge.absorbed_study_id != original_merge.absorbed_study_id
    first = study_unmerge(review=full_review, merge=original_merge, user=owner)
    second = study_unmerge(review=copy, merge=copy_merge, user=owner)
    assert first.pk != second.pk
    assert (first.review_id, second.review_id) == (full_review.pk, copy.pk)
    assert Study.objects.filter(review=full_review).count() == 3
    assert Study.objects.filter(review=copy).count() == 3
    assert Decision.objects.filter(study=first).count() == 1
    assert Decision.objects.filter(study=second).count() == 1


def test_restore_under_another_slug_reuses_existing_users(full_review, cast):
    exported = backup.review_export(review=full_review)
    users = get_user_model().objects.count()
    copy = backup.review_import(data=exported, slug="copy")
    assert get_user_model().objects.count() == users
    assert copy.memberships.get(user=cast["owner"]).role == "owner"
    assert Study.objects.filter(review=copy).count() == 2  # the third one is merged
    assert SearchRun.objects.get(review=copy, round=None).hits_reported == 5
    update = SearchRun.objects.get(review=copy, round__number=2)
    assert (update.round.review, update.round.opened_by, update.hits_reported) == (
        copy,
        cast["owner"],
        7,
    )
    assert cast["owner"].is_active


def break_decision(data):
    data["decisions"][0]["study"] = 99999


def break_reason(data):
    data["decisions"][-1]["reasons"] = ["EC99"]


def break_verdict(data):
    data["records"][0]["year"] = "nineteen"


def break_snapshot(data):
    absorbed = data["study_merges"][0]["snapshot"]["absorbed"]
    next(i for i in absorbed if i["model"] == "screening.decision")["fields"]["stage"] = 99999


def twice_a_member(data):
    """A member listed twice: only the database's unique constraint catches it."""
    members = data["protocol"]["members"]
    members.append({**members[-1], "id": members[-1]["id"] + 1000})


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda d: d.update(format="csv"), "'format' must be 'slrweb-review'"),
        (lambda d: d.update(version=2), "unsupported version"),
        (break_decision, "refers to studies id 99999"),
        (break_reason, "reasons: names unknown code 'EC99'"),
        (break_verdict, "records[0].year"),
        (break_snapshot, "study_merges[0]: refers to stages id 99999"),
        (lambda d: d["protocol"].update(members=[]), "no owner"),
        (lambda d: d.update(records="many"), "'records' must be a list"),
        (twice_a_member, "members: the rows break a rule of the database"),
    ],
)
def test_bad_file_leaves_nothing(full_review, mutate, message):
    exported = json.loads(json.dumps(backup.review_export(review=full_review)))
    mutate(exported)
    assert_refused_leaving_nothing(exported, message)


def assert_refused_leaving_nothing(exported: dict, message: str, *, from_file=True) -> None:
    """Refused with `message`, nothing written: restored from the dict and, unless told not
    to, from the file the export command writes (read as a stream)."""
    counts = {model: model.objects.count() for model in backup.covered_models()}
    users = get_user_model().objects.count()
    attempts = [lambda: backup.review_import(data=exported, slug="broken")]
    if from_file:
        text = json.dumps(exported, ensure_ascii=False).encode()
        attempts.append(lambda: backup.review_restore(stream=io.BytesIO(text), slug="broken"))
    for attempt in attempts:
        with pytest.raises(ValidationError) as caught:
            attempt()
        assert message in caught.value.messages[0]
        assert {model: model.objects.count() for model in backup.covered_models()} == counts
        assert get_user_model().objects.count() == users


def deeply_nested(depth: int):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "mutate,path",
    [
        (lambda d: d["decisions"][0].update(verdict="bogus"), "decisions[0].verdict"),
        (lambda d: d["protocol"]["criteria"][0].update(code="C" * 21), "protocol.criteria[0].code"),
        (lambda d: d["search_runs"][0].update(hits_reported=-5), "search_runs[0].hits_reported"),
        (lambda d: d["batches"][0].update(records_read=-1), "batches[0].records_read"),
        (lambda d: d["protocol"]["criteria"][0].update(text=["a"]), "protocol.criteria[0].text"),
        (
            lambda d: d["protocol"]["stages"][0].update(is_entry="yes"),
            "protocol.stages[0].is_entry",
        ),
        (lambda d: d["records"][0].update(doi="1" * 300), "records[0].doi"),
        (lambda d: d["records"][0].update(raw=deeply_nested(200)), "records[0].raw"),
        (lambda d: d["decisions"][0].update(reasons="EC1"), "decisions[0].reasons"),
        (
            lambda d: d["protocol"]["review"].update(quality_scale="bogus"),
            "protocol.review.quality_scale",
        ),
        (lambda d: d["studies"][0].update(outcome="lost"), "studies[0].outcome"),
        (
            lambda d: d["protocol"]["stages"][1].update(reviewers_required=0),
            "protocol.stages[1].reviewers_required",
        ),
        (lambda d: d["quality_answers"][0].update(answer="7"), "quality_answers[0].answer"),
    ],
)
def test_restore_refuses_an_invalid_value_with_its_json_path(full_review, mutate, path):
    exported = json.loads(json.dumps(backup.review_export(review=full_review)))
    in_order = json.loads(json.dumps(exported))
    mutate(in_order)
    assert_refused_leaving_nothing(in_order, path)
    # Given as a dict, the last row of a table is refused under its own index, whatever its id
    # (a file lists rows in id order: see test_a_file_with_rows_out_of_order_is_refused).
    exported["decisions"].reverse()
    mutate(exported)
    assert_refused_leaving_nothing(exported, path, from_file=False)


def test_restore_command_refuses_deeply_nested_json_without_a_traceback(db, tmp_path):
    path = tmp_path / "deep.json"
    head = '{"format": "slrweb-review", "version": 1, "slug": "deep", "protocol": {"review": '
    path.write_text(head + "[" * 100_000 + "]" * 100_000 + "}}")
    with pytest.raises(CommandError, match="nested deeper than"):
        call_command("import_review", str(path), stdout=io.StringIO())
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CommandError, match="must hold one JSON object"):
        call_command("import_review", str(path), stdout=io.StringIO())
    assert not Review.objects.filter(slug="deep").exists()


def test_existing_slug_is_refused(full_review):
    with pytest.raises(ValidationError, match="already exists"):
        backup.review_import(data=backup.review_export(review=full_review))


def test_commands_round_trip(full_review, tmp_path):
    out = io.StringIO()
    call_command("export_review", full_review.slug, stdout=out)
    data = json.loads(out.getvalue())
    assert data["format"] == "slrweb-review"
    path = tmp_path / "backup.json"
    path.write_text(out.getvalue())
    result = io.StringIO()
    call_command("import_review", str(path), "--slug", "restored", stdout=result)
    assert json.loads(result.getvalue()) == {"review": "restored"}
    assert Record.objects.filter(review__slug="restored").count() == 4


def test_commands_fail_clearly(full_review, tmp_path):
    with pytest.raises(CommandError, match="No review with slug"):
        call_command("export_review", "nope", stdout=io.StringIO())
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(CommandError, match="not a JSON file"):
        call_command("import_review", str(bad), stdout=io.StringIO())
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_review", str(tmp_path / "missing.json"), stdout=io.StringIO())
    with pytest.raises(CommandError, match="already exists"):
        out = io.StringIO()
        call_command("export_review", full_review.slug, stdout=out)
        bad.write_text(out.getvalue())
        call_command("import_review", str(bad), stdout=io.StringIO())


def _more_decisions(review, cast, count):
    title = review.stages.get(key="title")
    ec1 = Criterion.objects.get(review=review, code="EC1")
    for index in range(count):
        study = Study.objects.create(review=review, title=f"Extra {index}")
        decision = Decision.objects.create(
            review=review, study=study, stage=title, reviewer=cast["owner"], verdict="exclude"
        )
        decision.reasons.add(ec1)


def test_export_writes_rows_as_it_reads_them(full_review, cast, monkeypatch):
    """Rows are fetched a few at a time and each is written before the next ones are read: the
    backup of a review of any size never sits in memory."""
    _more_decisions(full_review, cast, 6)
    monkeypatch.setattr(backup, "FETCH_ROWS", 2)
    events: list[tuple[str, str]] = []

    def logged(execute, sql, params, many, context):
        events.append(("sql", sql))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(logged):
        backup.review_backup_write(
            review=full_review, write=lambda text: events.append(("w", text))
        )
    text = "".join(chunk for kind, chunk in events if kind == "w")
    assert json.loads(text)["decisions"] == backup.review_export(review=full_review)["decisions"]
    start = events.index(("w", ', "decisions": ['))
    first_row = next(
        i
        for i, (kind, chunk) in enumerate(events)
        if i > start and kind == "w" and '"verdict"' in chunk
    )
    later_fetches = [
        sql for kind, sql in events[first_row:] if kind == "sql" and "decision_reasons" in sql
    ]
    assert len(later_fetches) >= 3  # 9 decisions, 2 at a time: the rest read after the first


class _CountingReader(io.BytesIO):
    """A file that remembers how far it has been read."""

    def read(self, size=-1):
        chunk = super().read(size)
        self.consumed = self.tell()
        return chunk


def test_restore_inserts_rows_before_the_whole_file_is_read(full_review, monkeypatch):
    exported = backup.review_export(review=full_review)
    text = json.dumps(exported).encode()
    monkeypatch.setattr(backup, "READ_BYTES", 256)
    stream = _CountingReader(text)
    stream.consumed = 0
    read_at_first_record: list[int] = []

    insert = backup._insert_as_given

    def watch(model, objects, count):
        if model is Record and not read_at_first_record:
            read_at_first_record.append(stream.consumed)
        return insert(model, objects, count)

    monkeypatch.setattr(backup, "_insert_as_given", watch)
    copy = backup.review_restore(stream=stream, slug="copy")
    assert Record.objects.filter(review=copy).count() == 4
    assert read_at_first_record and read_at_first_record[0] < len(text) * 0.9


def _old_format(exported: dict) -> str:
    """The file as slrweb wrote it before streaming: users last, and (as a file from before the
    stopping rule) without the stage stops."""
    old = {key: value for key, value in exported.items() if key not in ("users", "stage_stops")}
    old["users"] = exported["users"]
    return json.dumps(old)


def test_a_backup_in_the_old_layout_restores_exactly(full_review, tmp_path):
    exported = json.loads(json.dumps(backup.review_export(review=full_review)))
    path = tmp_path / "old.json"
    path.write_text(_old_format(exported))
    ImportBatch.objects.all().delete()
    Review.objects.all().delete()
    get_user_model().objects.all().delete()
    call_command("import_review", str(path), stdout=io.StringIO())
    restored = Review.objects.get(slug=full_review.slug)
    assert canonical(backup.review_export(review=restored)) == canonical(exported)
    # The users listed at the end still give the created accounts their details.
    reviewer = get_user_model().objects.get(username="reviewer")
    assert reviewer.email == "reviewer@example.org" and not reviewer.is_active


def test_queue_priorities_round_trip_in_the_study_rows(full_review):
    exported = backup.review_export(review=full_review)
    # In id order: the included study (no current stage, so no queue) and "Other".
    assert [row["priority"] for row in exported["studies"]] == [None, 0.25]
    # The absorbed study's priority row is not in its merge snapshot (a retrain ranks it).
    merge = exported["study_merges"][0]
    models = [item["model"] for item in merge["snapshot"]["absorbed"]]
    assert "screening.studypriority" not in models
    copy = backup.review_import(data=exported, slug="copy")
    stored = StudyPriority.objects.filter(study__review=copy)
    assert list(stored.values_list("study__title", "stage__key", "priority")) == [
        ("Other", "title", 0.25)
    ]
    assert stored.get().stage.review_id == copy.pk


def test_a_backup_from_before_the_priority_table_restores_its_priorities(full_review):
    """A file written while the priority was a field of Study: the same study rows with their
    "priority", and merge snapshots whose absorbed study still has that field (an unmerge after
    the restore must not trip over it)."""
    data = json.loads(json.dumps(backup.review_export(review=full_review)))
    for row, priority in zip(data["studies"], (0.5, 0.125), strict=True):
        row["priority"] = priority
    absorbed = data["study_merges"][0]["snapshot"]["absorbed"]
    for item in absorbed:
        if item["model"] == "screening.study":
            item["fields"]["priority"] = 0.75
    ImportBatch.objects.all().delete()
    Review.objects.all().delete()
    get_user_model().objects.all().delete()
    restored = backup.review_import(data=data)
    stored = dict(
        StudyPriority.objects.filter(study__review=restored).values_list("study__title", "priority")
    )
    # The included study has no current stage: no queue to rank it in.
    assert stored == {"Other": 0.125}
    merge, _ = _absorbed(restored)
    owner = get_user_model().objects.get(username="owner")
    study = study_unmerge(review=restored, merge=merge, user=owner)
    assert study.title == "MLOps in practice (preprint)"
    assert not StudyPriority.objects.filter(study=study).exists()


def test_migration_0019_strips_the_dropped_field_from_stored_merge_snapshots(full_review):
    """A merge made before the priority table keeps the absorbed study serialised with its
    `priority`; migration 0019 removes it so that the unmerge can deserialise the study."""
    migration = importlib.import_module("screening.migrations.0019_study_priority")
    merge, _ = _absorbed(full_review)
    for item in merge.snapshot["absorbed"]:
        if item["model"] == "screening.study":
            item["fields"]["priority"] = 0.75
    merge.save(update_fields=["snapshot"])
    migration.snapshots_without_priority(apps, None)
    merge.refresh_from_db()
    study_fields = next(
        item["fields"] for item in merge.snapshot["absorbed"] if item["model"] == "screening.study"
    )
    assert "priority" not in study_fields and study_fields["title"]
    owner = get_user_model().objects.get(username="owner")
    study = study_unmerge(review=full_review, merge=merge, user=owner)
    assert study.title == "MLOps in practice (preprint)"


def test_a_backup_with_a_priority_that_is_not_a_number_is_refused(full_review):
    data = json.loads(json.dumps(backup.review_export(review=full_review)))
    data["studies"][1]["priority"] = "high"
    assert_refused_leaving_nothing(data, "studies[1].priority: must be a number or null")


def test_a_truncated_file_restores_nothing(full_review, cast, tmp_path):
    _more_decisions(full_review, cast, 30)
    path = tmp_path / "backup.json"
    call_command("export_review", full_review.slug, "--output", str(path))
    text = path.read_bytes()
    counts = {model: model.objects.count() for model in backup.covered_models()}
    users = get_user_model().objects.count()
    for cut in (0.5, 0.9, 0.999):
        path.write_bytes(text[: int(len(text) * cut)])
        with pytest.raises(CommandError, match="not a JSON file"):
            call_command("import_review", str(path), "--slug", "cut", stdout=io.StringIO())
        assert {model: model.objects.count() for model in backup.covered_models()} == counts
        assert get_user_model().objects.count() == users


def test_commands_round_trip_compressed(full_review, tmp_path):
    path = tmp_path / "backup.json.gz"
    call_command("export_review", full_review.slug, "--output", str(path))
    assert gzip.decompress(path.read_bytes()).startswith(b"{")
    result = io.StringIO()
    call_command("import_review", str(path), "--slug", "restored", stdout=result)
    restored = Review.objects.get(slug="restored")
    exported = backup.review_export(review=full_review)
    again = backup.review_export(review=restored)
    for data in (exported, again):
        data.pop("slug")
    assert canonical(again) == canonical(exported)


@pytest.mark.parametrize(
    "text,message",
    [
        (b'{"format": "slrweb-review"} {}', "something follows the object"),
        (b'{"format": "slrweb-review", "slug": "\xff"}', "not a JSON file"),
        (b'[{"format": "slrweb-review"}]', "must hold one JSON object"),
        (b'{"format": "slrweb-review", "version": 1, "slug": "x", "records": []}', "missing"),
        (b'{"format": "slrweb-review", "version": 1, "protocol": []}', "must be an object"),
    ],
)
def test_a_malformed_file_is_refused_clearly(db, text, message):
    with pytest.raises(ValidationError, match=message):
        backup.review_restore(stream=io.BytesIO(text))
    assert not Review.objects.exists()


def test_a_file_with_rows_out_of_order_is_refused(full_review):
    exported = json.loads(json.dumps(backup.review_export(review=full_review)))
    exported["decisions"].reverse()
    with pytest.raises(ValidationError, match=r"decisions\[1\]: id \d+ comes after id \d+"):
        backup.review_restore(stream=io.BytesIO(json.dumps(exported).encode()), slug="copy")
    assert not Review.objects.filter(slug="copy").exists()


def test_a_file_with_a_table_after_one_referring_to_it_is_refused(full_review):
    exported = backup.review_export(review=full_review)
    studies = exported.pop("studies")
    exported["studies"] = studies  # now after records, decisions ... that refer to it
    with pytest.raises(ValidationError, match=r"records\[0\].study: .* no 'studies' before it"):
        backup.review_restore(stream=io.BytesIO(json.dumps(exported).encode()), slug="copy")
    # After a table that would have needed it, though (empty) it did not, it is refused too.
    reordered = {key: value for key, value in exported.items() if key != "studies"}
    reordered["records"] = []
    at = list(reordered).index("records") + 1
    items = list(reordered.items())
    reordered = dict([*items[:at], ("studies", studies), *items[at:]])
    with pytest.raises(ValidationError, match="'studies' comes after 'records'"):
        backup.review_restore(stream=io.BytesIO(json.dumps(reordered).encode()), slug="copy")
    assert not Review.objects.filter(slug="copy").exists()


def _stored(table, review):
    """Every stored column of a table's rows of a review, in id order."""
    return list(backup._carried(table, review).order_by("pk").values())


def test_restore_keeps_every_stored_value_and_gives_ids_in_the_file_order(full_review):
    """Pins the stored rows a restore writes: timestamps exactly as stored (auto_now fields
    included), every other plain value, and new ids ascending in the file's id order, taken from
    the table's sequence (a row created afterwards gets a higher id, never a restored one)."""
    exported = backup.review_export(review=full_review)
    copy = backup.review_import(data=exported, slug="copy")
    for table in backup.TABLES:
        original = _stored(table, full_review)
        restored = _stored(table, copy)
        assert len(restored) == len(original), table.key
        new_ids = [row["id"] for row in restored]
        assert new_ids == sorted(set(new_ids)), table.key
        plain = {f.attname for f in backup._plain_fields(table)}
        for before, after in zip(original, restored, strict=True):
            for name in plain:
                if name == "object_id":
                    continue
                assert after[name] == before[name], f"{table.key}.{name}"
            for attname, target in table.refs.items():
                if before[attname] is None:
                    assert after[attname] is None
                    continue
                old_rank = [r["id"] for r in _stored(backup.TABLE_BY_KEY[target], full_review)]
                new_rank = [r["id"] for r in _stored(backup.TABLE_BY_KEY[target], copy)]
                assert new_rank.index(after[attname]) == old_rank.index(before[attname])
    auto = [f.attname for f in Decision._meta.concrete_fields if backup._is_auto(f)]
    assert auto  # the decisions carry auto_now timestamps: the case this test pins
    originals = list(
        Decision.objects.filter(study__review=full_review).order_by("pk").values(*auto)
    )
    copies = list(Decision.objects.filter(study__review=copy).order_by("pk").values(*auto))
    assert copies == originals
    study = Study.objects.create(review=copy, title="Created after the restore")
    assert study.pk > max(
        Study.objects.filter(review=copy).exclude(pk=study.pk).values_list("pk", flat=True)
    )


def _with_more_candidates(exported: dict, pairs: int) -> dict:
    """The backup with `pairs` more records, each pair of them a duplicate candidate."""
    data = json.loads(json.dumps(exported))
    records = data["records"]
    next_id = max(row["id"] for row in records) + 1
    next_position = max(row["position"] for row in records) + 1
    for number in range(2 * pairs):
        records.append({**records[0], "id": next_id + number, "position": next_position + number})
    candidate = data["duplicate_candidates"][0]
    next_pair = max(row["id"] for row in data["duplicate_candidates"]) + 1
    for number in range(pairs):
        first = next_id + 2 * number
        data["duplicate_candidates"].append(
            {**candidate, "id": next_pair + number, "record_a": first, "record_b": first + 1}
        )
    return data


def test_restore_runs_no_query_per_row(full_review):
    """A table of a million rows is inserted in batches: the rows of a table with a check
    constraint (the candidates' ordered pair) are not checked one query each."""
    exported = backup.review_export(review=full_review)
    queries = []
    for pairs, slug in ((1, "small"), (40, "large")):
        with CaptureQueriesContext(connection) as captured:
            backup.review_import(data=_with_more_candidates(exported, pairs), slug=slug)
        queries.append(len(captured))
        assert DuplicateCandidate.objects.filter(review__slug=slug).count() == pairs + 1
    assert queries[1] == queries[0]


def test_a_candidate_breaking_its_check_constraint_is_refused_with_its_path(full_review):
    data = _with_more_candidates(backup.review_export(review=full_review), 10)
    pair = data["duplicate_candidates"][7]
    pair["record_a"], pair["record_b"] = pair["record_b"], pair["record_a"]
    assert_refused_leaving_nothing(data, "duplicate_candidates[7]: breaks the rule")


def test_a_row_nested_too_deep_is_refused_with_its_path_before_it_is_built(full_review):
    """Rows are built by ijson's C backend; the depth is still counted as the events come
    (their paths, as long as their depth, would take gigabytes at this depth)."""
    exported = json.loads(json.dumps(backup.review_export(review=full_review)))
    exported["records"][0]["title"] = "DEEP"
    depth = 100_000
    text = json.dumps(exported).replace('"DEEP"', "[" * depth + "]" * depth, 1).encode()
    with pytest.raises(ValidationError, match=r"records\[0\]\.title"):
        backup.review_restore(stream=io.BytesIO(text), slug="deep")
    assert not Review.objects.filter(slug="deep").exists()
