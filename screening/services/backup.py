"""Full backup of a review: `review_export` / `review_import` ("slrweb-review", version 1).

One declarative list of tables drives both directions. Each table names its model, where it
sits in the JSON (inside `protocol` or at the top level), which foreign keys point at other
tables (their ids are remapped on restore), which point at users (written as usernames) and
which many-to-many fields are written by a natural key (decision reasons by criterion code).
Every concrete field not named there is copied as is, so a field added to a model later is
carried without touching this module, and a new model is one more `Table` line, or one
`NotCarried` line saying why it is pure machinery that a restore must not bring back.

A study's queue priority (StudyPriority, its own table since migration 0019) travels in the
study's row as "priority", its value in the study's current stage, as the study's own field did
before: files written before and after that migration read the same way.

A `StudyMerge` keeps the absorbed study and its dependent rows as Django-serialised objects with
their old primary keys, so that an unmerge recreates them. Restore rewrites those snapshots:
references to rows of the backup are remapped like any other, users become usernames in the
file and user ids again on restore, and the absorbed rows (which no longer exist) get primary
keys reserved from their tables' sequences, so an unmerge after a restore recreates the study
without ever overwriting another row.

Restore is exact: rows are inserted in dependency order and in their original id order (so
constraints such as `record_a < record_b` hold after remapping), timestamps written by
`auto_now`/`auto_now_add` are put back, and users missing from the database are created inactive
with unusable passwords. It runs in one transaction: a bad file leaves nothing behind.

Both directions stream, so memory does not grow with the review: `review_backup_write` reads
rows a chunk at a time (a server-side cursor on PostgreSQL, inside one read-only snapshot) and
writes each as it comes, and `review_restore` parses the file with ijson, building one row at a
time and inserting them in batches; only the old -> new id maps (integers) are kept. The file is
one JSON document, the layout is unchanged (version 1): the users come first now, and a file
with the users last (as written before) still restores. A file lists each table before the
tables that refer to it and each table's rows in id order, as the export writes them.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar

import ijson
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.validators import URLValidator
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    IntegrityError,
    connection,
    connections,
    models,
    transaction,
)
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from ..models import (
    Adjudicator,
    ApiToken,
    AuditEvent,
    AuditSample,
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
    Invitation,
    Membership,
    PrismaSAnswers,
    QualityAnswer,
    QualityAssignment,
    QualityConsensus,
    QualityCriterion,
    RankingRun,
    RankingSettings,
    Record,
    ResearchQuestion,
    Resolution,
    Review,
    ScreeningClaim,
    SearchRound,
    SearchRun,
    SearchString,
    Source,
    Stage,
    StageStop,
    Study,
    StudyMerge,
    StudyNote,
    StudyPriority,
    StudyTag,
    Tag,
)

FORMAT = "slrweb-review"
VERSION = 1
PROTOCOL = "protocol"
# Memory bounds, whatever the size of the review: rows fetched at a time while writing a backup,
# rows inserted at a time while restoring one, bytes of the file parsed at a time.
FETCH_ROWS = 2000
INSERT_ROWS = 2000
READ_BYTES = 64 * 1024


@dataclass(frozen=True)
class Table:
    key: str
    model: type[models.Model]
    section: str | None = None  # "protocol" or None (top level)
    refs: dict[str, str] = field(default_factory=dict)  # fk attname -> table key
    users: tuple[str, ...] = ()  # fk names to users, written as usernames
    by_code: dict[str, str] = field(default_factory=dict)  # m2m name -> table key (by "code")
    review_path: str = "review"  # how rows of this table are found from the review
    skip: tuple[str, ...] = ()  # fields not written at all
    only: Q | None = None  # the rows carried, when not all of them are
    # Plain integer fields holding an id of another table (no foreign key: the row may be gone).
    id_fields: dict[str, str] = field(default_factory=dict)
    id_lists: dict[str, str] = field(default_factory=dict)  # JSON lists of ids of a table
    snapshot: str = ""  # JSON field holding {"absorbed": [serialised rows]} (see StudyMerge)
    # Studies: each row also carries "priority", the study's StudyPriority in its current stage
    # (null: unranked there), as the study's own field did before the priorities had a table.
    queue_priority: bool = False
    # Fields named like ids that are not ids of this database (copied as they are) or that a
    # rule of their own remaps (an audit event's object_id).
    as_is: tuple[str, ...] = ()


@dataclass(frozen=True)
class NotCarried:
    """A model the backup leaves out on purpose, and why (the coverage test reads these)."""

    model: type[models.Model]
    reason: str


# Dependency order: a table only refers to tables above it.
PROTOCOL_TABLES = [
    Table("stages", Stage, PROTOCOL),
    Table("criteria", Criterion, PROTOCOL),
    Table("quality_criteria", QualityCriterion, PROTOCOL),
    Table("research_questions", ResearchQuestion, PROTOCOL),
    Table("search_strings", SearchString, PROTOCOL),
    Table("sources", Source),
    Table("search_rounds", SearchRound, users=("opened_by",)),
    Table(
        "search_runs",
        SearchRun,
        refs={
            "search_string_id": "search_strings",
            "source_id": "sources",
            "round_id": "search_rounds",
        },
    ),
]
TABLES = [
    Table("members", Membership, PROTOCOL, users=("user",)),
    *PROTOCOL_TABLES,
    Table("adjudicators", Adjudicator, PROTOCOL, users=("user", "designated_by")),
    Table("prisma_s_answers", PrismaSAnswers, PROTOCOL, users=("updated_by",)),
    Table(
        "ranking_settings",
        RankingSettings,
        PROTOCOL,
        refs={"stage_id": "stages"},
        review_path="stage__review",
    ),
    Table(
        "batches",
        ImportBatch,
        refs={"source_id": "sources", "search_run_id": "search_runs"},
        users=("uploaded_by",),
    ),
    Table("studies", Study, refs={"current_stage_id": "stages"}, queue_priority=True),
    Table(
        "records",
        Record,
        refs={"batch_id": "batches", "study_id": "studies"},
        as_is=("source_record_id",),  # the library's own id of the entry
        # Derived from the record's fields; the next dedup run stores it again.
        skip=("dedup_features",),
    ),
    Table(
        "duplicate_candidates",
        DuplicateCandidate,
        refs={"record_a_id": "records", "record_b_id": "records"},
        users=("decided_by",),
    ),
    Table(
        "decisions",
        Decision,
        refs={"study_id": "studies", "stage_id": "stages"},
        users=("reviewer",),
        by_code={"reasons": "criteria"},
    ),
    Table(
        "resolutions",
        Resolution,
        refs={"study_id": "studies", "stage_id": "stages", "primary_reason_id": "criteria"},
        users=("decided_by",),
        by_code={"reasons": "criteria"},
    ),
    Table(
        "full_texts",
        FullText,
        refs={"study_id": "studies"},
        users=("recorded_by",),
        review_path="study__review",
    ),
    Table(
        "quality_answers",
        QualityAnswer,
        refs={"study_id": "studies", "criterion_id": "quality_criteria"},
        users=("assessor",),
        review_path="study__review",
    ),
    Table(
        "quality_assignments",
        QualityAssignment,
        refs={"study_id": "studies"},
        users=("assessor", "assigned_by"),
        review_path="study__review",
    ),
    Table(
        "quality_consensus",
        QualityConsensus,
        refs={"study_id": "studies", "criterion_id": "quality_criteria"},
        users=("decided_by",),
        review_path="study__review",
    ),
    Table(
        "extraction_fields",
        ExtractionField,
        refs={"research_question_id": "research_questions"},
    ),
    Table(
        "extraction_values",
        ExtractionValue,
        refs={"study_id": "studies", "field_id": "extraction_fields"},
        users=("extractor", "reconciled_by"),
        review_path="study__review",
    ),
    Table(
        "extraction_assignments",
        ExtractionAssignment,
        refs={"study_id": "studies"},
        users=("extractor", "assigned_by"),
        review_path="study__review",
    ),
    Table("tags", Tag, users=("owner",)),
    Table(
        "study_tags",
        StudyTag,
        refs={"study_id": "studies", "tag_id": "tags"},
        users=("added_by",),
        review_path="study__review",
    ),
    Table(
        "study_notes",
        StudyNote,
        refs={"study_id": "studies", "stage_id": "stages"},
        users=("author",),
        review_path="study__review",
    ),
    # Restored invitations keep their state; a link sent before the restore names the old id,
    # so it does not open the restored copy.
    Table("invitations", Invitation, users=("user", "invited_by", "accepted_by")),
    Table("funnel_snapshots", FunnelSnapshot),
    # Finished trainings pace the next one (every K decisions) and feed the progress panel; a
    # queued or running one is in-flight state that no worker would pick up after a restore, and
    # it would hold the review's single training slot for ever.
    Table(
        "ranking_runs",
        RankingRun,
        refs={"stage_id": "stages"},
        users=("requested_by",),
        only=~Q(status__in=RankingRun.ACTIVE),
    ),
    # After every table a snapshot may hold rows of, so those still alive are mapped, not copied.
    Table(
        "study_merges",
        StudyMerge,
        refs={"kept_id": "studies", "candidate_id": "duplicate_candidates"},
        users=("merged_by", "undone_by"),
        id_fields={"absorbed_study_id": "studies"},
        id_lists={"record_ids": "records"},
        snapshot="snapshot",
    ),
    # A stage stopped on the stopping rule: its evidence and the studies it excluded, so the
    # stop can still be undone after a restore; and the stage's random audit sample.
    Table(
        "stage_stops",
        StageStop,
        refs={"stage_id": "stages"},
        users=("stopped_by", "undone_by"),
        id_lists={"study_ids": "studies"},
    ),
    Table(
        "audit_samples",
        AuditSample,
        refs={"stage_id": "stages"},
        users=("requested_by",),
        id_lists={"study_ids": "studies"},
    ),
    Table("audit_events", AuditEvent, users=("actor",), as_is=("object_id",)),
]
NOT_CARRIED = [
    NotCarried(ScreeningClaim, "a lease on a study for a few minutes; queues start afresh"),
    NotCarried(FunnelSchedule, "debounce state of the funnel task; the snapshots are carried"),
    NotCarried(ApiToken, "a user's personal API credential, not review data; made afresh"),
    NotCarried(
        StudyPriority,
        "carried in the study rows' 'priority' field (the study's place in its current stage's"
        " queue); a ranking for another stage is rewritten by that stage's next retrain",
    ),
]
TABLE_BY_KEY = {table.key: table for table in TABLES}
TABLE_BY_MODEL_NAME = {table.model._meta.model_name: table for table in TABLES}
TABLE_BY_LABEL = {table.model._meta.label_lower: table for table in TABLES}
NOT_CARRIED_LABELS = {item.model._meta.label_lower for item in NOT_CARRIED}
# Settings of the review itself that belong to the protocol (everything but identity and
# bookkeeping), copied by name. The version counts edits of this database's row: a restore or
# a protocol import is one more edit, never a step back to the file's number.
REVIEW_SKIP = {"id", "slug", "created_by", "created_at", "updated_at", "version"}
USER_FIELDS = ("username", "email", "first_name", "last_name")


def undeclared_relations() -> list[str]:
    """Foreign keys (or fields named like ids) a table does not say how to carry.

    Copied as plain values they would point at the old ids after a restore (a test keeps this
    list empty).
    """
    missing = []
    for table in TABLES:
        declared = (
            set(table.refs)
            | {f"{name}_id" for name in table.users}
            | set(table.skip)
            | set(table.id_fields)
            | set(table.id_lists)
            | set(table.as_is)
        )
        for model_field in table.model._meta.concrete_fields:
            if model_field.name in ("review", "id"):
                continue
            looks_like_ids = model_field.name.endswith(("_id", "_ids"))
            if (model_field.is_relation or looks_like_ids) and model_field.attname not in declared:
                missing.append(f"{table.key}.{model_field.name}")
        for model_field in table.model._meta.many_to_many:
            if model_field.name not in table.by_code:
                missing.append(f"{table.key}.{model_field.name}")
    return missing


def covered_models() -> set[type[models.Model]]:
    """Models the backup carries."""
    return {table.model for table in TABLES} | {Review}


def declared_models() -> set[type[models.Model]]:
    """Models carried or declared not carried (a test checks it against every model)."""
    return covered_models() | {item.model for item in NOT_CARRIED}


# ----- merge snapshots --------------------------------------------------------------------

# How an id is looked up: "ref" must be a row of the backup, "own" is a row's own id (a row of
# the backup, or one a snapshot holds: a new id is reserved for it), "opt" is dropped if absent.
IdFor = Callable[[str, Any, str], Any]
# How a user is written: a username for an id (export), an id for a username (restore).
UserFor = Callable[[Any], Any]
# A row, a section or the whole file, as JSON.
JsonObject = dict[str, Any]
_T = TypeVar("_T")


def extra_ids_convert(
    table: Table,
    fields: JsonObject,
    *,
    id_for: IdFor,
    user_for: UserFor,
    review_id: int | None,
    where: str,
) -> JsonObject:
    """`fields` with the id fields, id lists and snapshot of `table` passed through id_for."""
    fields = dict(fields)
    for name, target in table.id_fields.items():
        if fields.get(name) is not None:
            fields[name] = id_for(target, fields[name], "own")
    for name, target in table.id_lists.items():
        values = fields.get(name) or []
        if not isinstance(values, list):
            raise BackupRefused(f"{where}: '{name}' must be a list of ids")
        fields[name] = [
            new for new in (id_for(target, v, "opt") for v in values) if new is not None
        ]
    if table.snapshot and isinstance(fields.get(table.snapshot), dict):
        fields[table.snapshot] = snapshot_convert(
            fields[table.snapshot],
            id_for=id_for,
            user_for=user_for,
            review_id=review_id,
            where=where,
        )
    return fields


def snapshot_convert(
    snapshot: JsonObject, *, id_for: IdFor, user_for: UserFor, review_id: int | None, where: str
) -> JsonObject:
    """A copy of a merge snapshot with its ids and users converted; rows not carried dropped.

    The absorbed rows are Django's "python" serialisation: {"model", "pk", "fields"}, foreign
    keys and many-to-many by primary key, under the same field names as the backup's rows.
    """
    absorbed = snapshot.get("absorbed") or []
    if not isinstance(absorbed, list):
        raise BackupRefused(f"{where}: the merge snapshot's 'absorbed' must be a list")
    objects: list[JsonObject] = []
    for item in absorbed:
        if not isinstance(item, dict) or not isinstance(item.get("fields"), dict):
            raise BackupRefused(f"{where}: the merge snapshot holds a malformed row")
        label = item.get("model")
        if label in NOT_CARRIED_LABELS:
            continue
        table = TABLE_BY_LABEL.get(label) if isinstance(label, str) else None
        if table is None:
            raise BackupRefused(f"{where}: the merge snapshot holds rows of unknown {label!r}")
        fields = dict(item["fields"])
        if table.queue_priority:
            # Study.priority before it had a table: an unmerge could not deserialise it.
            fields.pop("priority", None)
        if "review" in fields and review_id is not None:
            fields["review"] = review_id
        for attname, target in table.refs.items():
            name = attname.removesuffix("_id")
            if fields.get(name) is not None:
                fields[name] = id_for(target, fields[name], "ref")
        for name in table.users:
            fields[name] = user_for(fields.get(name))
        for name, target in table.by_code.items():
            fields[name] = [id_for(target, value, "ref") for value in fields.get(name) or []]
        fields = extra_ids_convert(
            table, fields, id_for=id_for, user_for=user_for, review_id=review_id, where=where
        )
        objects.append({**item, "pk": id_for(table.key, item.get("pk"), "own"), "fields": fields})
    return {**snapshot, "absorbed": objects}


def _same_id(table_key: str, old: Any, how: str) -> Any:
    return old


def _reserve_id(model: type[models.Model]) -> int:
    """A primary key of `model` that no insert will ever be given (the sequence moves past it)."""
    db_table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [db_table])
            return int(cursor.fetchone()[0])
        if connection.vendor == "sqlite":
            # Django's SQLite tables are AUTOINCREMENT: ids come from sqlite_sequence.
            quoted = connection.ops.quote_name(db_table)
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {quoted}")
            highest = cursor.fetchone()[0]
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [db_table])
            row = cursor.fetchone()
            new = max(highest, row[0] if row else 0) + 1
            if row:
                cursor.execute(
                    "UPDATE sqlite_sequence SET seq = %s WHERE name = %s", [new, db_table]
                )
            else:
                cursor.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [db_table, new]
                )
            return int(new)
    raise BackupRefused(f"merge history cannot be restored on {connection.vendor}")


# ----- writing ---------------------------------------------------------------------------


def json_value(model_field: models.Field[Any, Any], value: Any) -> Any:
    if value is None:
        return None
    if isinstance(model_field, models.FileField):
        return value.name or ""
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def _plain_fields(table: Table) -> list[models.Field[Any, Any]]:
    """Concrete fields copied as they are (not the id, the review, refs or users)."""
    names = (
        set(table.refs)
        | set(table.users)
        | set(table.skip)
        | set(table.id_fields)
        | set(table.id_lists)
        | {"id", "review", table.snapshot}
    )
    return [
        f
        for f in table.model._meta.concrete_fields
        if f.name not in names and f.attname not in names
    ]


def _review_settings_dump(review: Review) -> JsonObject:
    return {
        f.name: json_value(f, f.value_from_object(review))
        for f in Review._meta.concrete_fields
        if f.name not in REVIEW_SKIP
    }


def _username_for(cache: dict[int, str | None]) -> UserFor:
    def username(user_id: int | None) -> str | None:
        if user_id is None:
            return None
        if user_id not in cache:
            users = get_user_model().objects.filter(pk=user_id)
            cache[user_id] = users.values_list("username", flat=True).first()
        return cache[user_id]

    return username


def _row_dump(table: Table, obj: models.Model, usernames: dict[int, str | None]) -> JsonObject:
    row: JsonObject = {"id": obj.pk}
    for model_field in _plain_fields(table):
        row[model_field.name] = json_value(model_field, model_field.value_from_object(obj))
    for attname in table.refs:
        row[attname.removesuffix("_id")] = getattr(obj, attname)
    for name in table.users:
        user = getattr(obj, name)
        row[name] = user.get_username() if user is not None else None
    for name in table.by_code:
        row[name] = sorted(item.code for item in getattr(obj, name).all())
    for name in (*table.id_fields, *table.id_lists):
        row[name] = getattr(obj, name)
    if table.queue_priority:
        row["priority"] = getattr(obj, "queue_priority_value", None)
    if table.snapshot:
        # Users inside a snapshot are ids of this database: written as usernames.
        row[table.snapshot] = snapshot_convert(
            getattr(obj, table.snapshot) or {},
            id_for=_same_id,
            user_for=_username_for(usernames),
            review_id=None,
            where=f"{table.key} {obj.pk}",
        )
    return row


def _carried(table: Table, review: Review) -> QuerySet[Any]:
    """The rows of `table` a backup of `review` carries (unordered)."""
    queryset = table.model._default_manager.filter(**{table.review_path: review})
    return queryset.filter(table.only) if table.only is not None else queryset


def _rows(table: Table, review: Review) -> QuerySet[Any]:
    queryset = _carried(table, review).order_by("pk")
    if table.queue_priority:
        queryset = queryset.annotate(
            queue_priority_value=Subquery(
                StudyPriority.objects.filter(
                    study=OuterRef("pk"), stage=OuterRef("current_stage")
                ).values("priority")[:1]
            )
        )
    if table.users:
        queryset = queryset.select_related(*table.users)
    if table.by_code:
        queryset = queryset.prefetch_related(*table.by_code)
    return queryset


def tables_dump(*, review: Review, tables: list[Table]) -> JsonObject:
    """Rows of the given tables, placed under `protocol` or at the top level."""
    data: JsonObject = {PROTOCOL: {"review": _review_settings_dump(review)}}
    usernames: dict[int, str | None] = {}
    for table in tables:
        rows = [_row_dump(table, obj, usernames) for obj in _rows(table, review)]
        (data[PROTOCOL] if table.section == PROTOCOL else data)[table.key] = rows
    return data


def _users_dump(review: Review) -> list[JsonObject]:
    """Every user the backup names (by their ids in the rows and merge snapshots, queried)."""
    ids: set[int] = {review.created_by_id} if review.created_by_id else set()

    def seen(user_id: int | None) -> None:
        if user_id is not None:
            ids.add(user_id)

    for table in TABLES:
        rows = _carried(table, review).order_by()
        for name in table.users:
            ids.update(
                rows.filter(**{f"{name}__isnull": False}).values_list(name, flat=True).distinct()
            )
        if table.snapshot:
            for snapshot in rows.values_list(table.snapshot, flat=True).iterator(FETCH_ROWS):
                if isinstance(snapshot, dict):
                    snapshot_convert(
                        snapshot, id_for=_same_id, user_for=seen, review_id=None, where=""
                    )
    users = get_user_model().objects.filter(pk__in=ids).order_by("username")
    return [{name: getattr(user, name) for name in USER_FIELDS} for user in users]


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def review_backup_write(*, review: Review, write: Callable[[str], object]) -> None:
    """Write everything stored for a review (uploaded file bytes excepted) as one JSON document,
    a piece at a time: `write` gets the header, then each row as it is read.

    Outside a transaction it reads from one snapshot (REPEATABLE READ on PostgreSQL), so rows
    written while the export runs never leave a reference dangling in the file.
    """
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        review = Review.objects.get(pk=review.pk)  # the stored settings, not a stale copy
        header = {
            "format": FORMAT,
            "version": VERSION,
            "slug": review.slug,
            "created_at": review.created_at.isoformat(),
            "created_by": review.created_by.get_username() if review.created_by else None,
            "users": _users_dump(review),
        }
        write(_json(header)[:-1])
        write(f', "{PROTOCOL}": {{"review": {_json(_review_settings_dump(review))}')
        usernames: dict[int, str | None] = {}
        for section in (PROTOCOL, None):  # the protocol section's tables, then the others
            for table in (t for t in TABLES if t.section == section):
                write(f", {_json(table.key)}: [")
                rows = _rows(table, review).iterator(chunk_size=FETCH_ROWS)
                for index, obj in enumerate(rows):
                    write(("," if index else "") + _json(_row_dump(table, obj, usernames)))
                write("]")
            write("}")


def review_export(*, review: Review) -> JsonObject:
    """The backup of a review as one object in memory, for small reviews (tests, tools); the
    commands stream it with `review_backup_write`."""
    pieces: list[str] = []
    review_backup_write(review=review, write=pieces.append)
    data: JsonObject = json.loads("".join(pieces))
    return data


# ----- reading ---------------------------------------------------------------------------


class BackupRefused(Exception):
    """A problem in the file, with the place it was found."""


def table_path(table: Table) -> str:
    """Where a table's rows sit in the file, as a JSON path (`protocol.criteria`)."""
    return f"{PROTOCOL}.{table.key}" if table.section == PROTOCOL else table.key


def section_rows(data: JsonObject, table: Table) -> list[Any]:
    holder = data.get(PROTOCOL, {}) if table.section == PROTOCOL else data
    if not isinstance(holder, dict):
        raise BackupRefused(f"'{PROTOCOL}' must be an object")
    rows = holder.get(table.key, [])
    if not isinstance(rows, list):
        raise BackupRefused(f"'{table_path(table)}' must be a list")
    return rows


# A JSON value nested deeper than this is refused: no row the app writes comes close (a merge
# snapshot is 5 levels), and deeper ones would make later reads recurse without end.
MAX_JSON_DEPTH = 32
# The JSON types a field's value may have in the file (bool is not a number here).
_JSON_TYPES: list[tuple[tuple[type[models.Field[Any, Any]], ...], tuple[type, ...], str]] = [
    ((models.BooleanField,), (bool,), "true or false"),
    ((models.IntegerField,), (int,), "a whole number"),
    ((models.FloatField,), (int, float), "a number"),
    ((models.DecimalField,), (int, float, str), "a number"),
    ((models.DateField, models.TimeField), (str,), "a date as text"),
    ((models.CharField, models.TextField, models.FileField), (str,), "text"),
]


def _json_depth_check(value: object, where: str) -> None:
    """Refuse a JSON value nested deeper than MAX_JSON_DEPTH (iteratively: no recursion)."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if not isinstance(item, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise BackupRefused(f"{where}: nested deeper than {MAX_JSON_DEPTH} levels")
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children)


@dataclass(frozen=True)
class _Rule:
    """How the file's values of one field are checked, worked out once per field."""

    json_types: tuple[type, ...]  # the JSON types allowed (empty: any)
    described: str
    converts: bool  # to_python may change a value of an allowed type (not so for text)
    allowed: tuple[str, ...] | None  # the choices, as text
    validators: tuple[Callable[[Any], None], ...]


@functools.cache
def _rule(model_field: models.Field[Any, Any]) -> _Rule:
    json_types: tuple[type, ...] = ()
    described = ""
    for field_types, types, text in _JSON_TYPES:
        if isinstance(model_field, field_types):
            json_types, described = types, text
            break
    choices = model_field.choices
    return _Rule(
        json_types=json_types,
        described=described,
        converts=not isinstance(model_field, models.CharField | models.TextField),
        allowed=None if choices is None else tuple(str(k) for k, _ in model_field.flatchoices),
        # Limits (length, range, digits, slug); not URL syntax, which imports never enforced.
        validators=tuple(v for v in model_field.validators if not isinstance(v, URLValidator)),
    )


def _python_value(model_field: models.Field[Any, Any], value: Any, where: str) -> Any:
    """The file's value for a field, checked like the model would: type, choices and limits.

    `where` is the JSON path of the value (`decisions[3].verdict`), named in every refusal.
    """
    if value is None:
        if model_field.null:
            return None
        if model_field.has_default():
            return model_field.get_default()
        raise BackupRefused(f"{where}: may not be empty")
    if isinstance(model_field, models.JSONField):
        _json_depth_check(value, where)
        return value
    rule = _rule(model_field)
    if rule.json_types:
        wrong_bool = isinstance(value, bool) and bool not in rule.json_types
        if wrong_bool or not isinstance(value, rule.json_types):
            raise BackupRefused(f"{where}: must be {rule.described}, not {json.dumps(value)[:80]}")
    try:
        python = str(value) if isinstance(model_field, models.FileField) else value
        if rule.converts or not isinstance(python, str):
            python = model_field.to_python(python)
        empty = python in model_field.empty_values
        if rule.allowed is not None and not (model_field.blank and empty):
            if str(python) not in rule.allowed:
                raise BackupRefused(f"{where}: {python!r} is not one of {', '.join(rule.allowed)}")
        if not empty:
            for validator in rule.validators:
                validator(python)
    except ValidationError as error:
        raise BackupRefused(f"{where}: {' '.join(error.messages)}") from error
    return python


def _is_auto(model_field: models.Field[Any, Any]) -> bool:
    return bool(
        getattr(model_field, "auto_now", False) or getattr(model_field, "auto_now_add", False)
    )


def _insert_as_given(
    model: type[models.Model], objects: Iterable[models.Model], count: int
) -> list[models.Model]:
    """Insert the `count` objects of `objects` keeping the values set on `auto_now` /
    `auto_now_add` fields; each object gets its new id, ascending in their order.

    On PostgreSQL the rows go in by one COPY, their ids reserved from the table's sequence
    first: COPY writes the values as given (no `auto_now` stamping to undo) and costs a fraction
    of an INSERT per row. `objects` may build each object as it is taken: the database works on
    the rows already sent while the next ones are built. Elsewhere `bulk_create` (which stamps
    "now") then one prepared UPDATE per row putting the stored moments back.
    """
    if not count:
        return []
    if connection.vendor == "postgresql":
        return _copy_in(model, objects, count)
    objects = list(objects)
    stamped = [f for f in model._meta.local_concrete_fields if _is_auto(f)]
    given = [[getattr(obj, f.attname) for f in stamped] for obj in objects]
    created = model._base_manager.bulk_create(objects, batch_size=INSERT_ROWS)
    if stamped:
        quote = connection.ops.quote_name
        assignments = ", ".join(f"{quote(f.column)} = %s" for f in stamped)
        sql = (
            f"UPDATE {quote(model._meta.db_table)} SET {assignments}"
            f" WHERE {quote(model._meta.pk.column)} = %s"
        )
        rows = []
        for obj, values in zip(created, given, strict=True):
            prepared: list[object] = []
            for model_field, value in zip(stamped, values, strict=True):
                setattr(obj, model_field.attname, value)
                prepared.append(model_field.get_db_prep_value(value, connection))
            rows.append([*prepared, obj.pk])
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)
    return created


_AS_THEY_ARE = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.BooleanField,
    models.ForeignKey,
)


def _copy_in(
    model: type[models.Model], objects: Iterable[models.Model], count: int
) -> list[models.Model]:
    """PostgreSQL: reserve `count` ids from the table's sequence, then COPY the rows with
    every value prepared as Django would save it (`get_db_prep_save`: JSON, dates, files)."""
    meta = model._meta
    fields = meta.local_concrete_fields
    # Text, numbers, booleans and ids go to COPY as they are (their preparation only re-checks
    # the type); JSON, dates, decimals and files are prepared.
    prepared = [not isinstance(f, _AS_THEY_ARE) for f in fields]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    created: list[models.Model] = []
    # The connection itself, not the proxy that looks it up again for every value.
    wrapper = connections[DEFAULT_DB_ALIAS]
    with connection.wrap_database_errors, connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, count],
        )
        ids = sorted(row[0] for row in cursor.fetchall())
        with cursor.cursor.copy(f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN") as copy:
            for obj, new_id in zip(objects, ids, strict=True):
                obj.pk = new_id
                obj._state.adding = False
                copy.write_row(
                    [
                        f.get_db_prep_save(getattr(obj, f.attname), wrapper)
                        if prepare
                        else getattr(obj, f.attname)
                        for f, prepare in zip(fields, prepared, strict=True)
                    ]
                )
                created.append(obj)
    return created


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _codes_of(table: Table, row: dict[str, Any], where: str) -> dict[str, list[str]]:
    """The codes a row names for each many-to-many field written by code (checked)."""
    for name in table.by_code:
        codes = row.get(name) or []
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            raise BackupRefused(f"{where}.{name}: must be a list of codes")
    return {name: row.get(name) or [] for name in table.by_code}


def _row_check(table: Table, index: int, row: object) -> JsonObject:
    if not isinstance(row, dict) or not _is_id(row.get("id")):
        raise BackupRefused(
            f"{table_path(table)}[{index}]: each row must be an object with an integer 'id'"
        )
    return row


def _dependencies(table: Table) -> set[str]:
    """Tables whose new ids the rows of `table` need (a merge snapshot or an audit event may
    name a row of any table above it)."""
    keys = {*table.refs.values(), *table.by_code.values()}
    keys |= {*table.id_fields.values(), *table.id_lists.values()}
    if table.snapshot or table.model is AuditEvent:
        keys |= {above.key for above in TABLES[: TABLES.index(table)]}
    return keys - {table.key}


def _kept(objects: Iterable[_T], kept: list[_T]) -> Iterator[_T]:
    """`objects`, each also appended to `kept` as it is taken."""
    for obj in objects:
        kept.append(obj)
        yield obj


def _check_constraints(table: Table) -> list[models.CheckConstraint]:
    return [c for c in table.model._meta.constraints if isinstance(c, models.CheckConstraint)]


class _Loader:
    def __init__(
        self, *, review: Review, create_users: bool, user_details: dict[str, JsonObject]
    ) -> None:
        self.review = review
        self.create_users = create_users
        self.ids: dict[str, dict[int, int]] = {}
        self.users: dict[str, User] = {}
        self.user_details = user_details  # username -> the file's entry; may grow later
        self.created_users: set[str] = set()
        self.loaded: set[str] = set()
        self.needed_by: dict[str, str] = {}  # table key -> the first table that referred to it
        self.codes: dict[str, dict[str, int]] = {}

    def user(self, username: object, where: str) -> User | None:
        if username is None:
            return None
        if not isinstance(username, str) or not username:
            raise BackupRefused(f"{where}: a user must be given by username")
        if username not in self.users:
            user_model = get_user_model()
            user = user_model.objects.filter(username=username).first()
            if user is None:
                if not self.create_users:
                    raise BackupRefused(f"{where}: no user named {username!r}")
                user = user_model(username=username, is_active=False)
                self._describe(user)
                user.set_unusable_password()
                user.save()
                self.created_users.add(username)
            self.users[username] = user
        return self.users[username]

    def _describe(self, user: User) -> None:
        details = self.user_details.get(user.get_username(), {})
        for name in USER_FIELDS:
            if name != "username":
                setattr(user, name, details.get(name) or "")

    def user_described(self, username: str) -> None:
        """The file's entry for a user arrived after the user was created (an older file lists
        the users last): give the new account its details."""
        if username in self.created_users:
            user = self.users[username]
            self._describe(user)
            user.save(update_fields=[name for name in USER_FIELDS if name != "username"])

    def table_load(self, table: Table, rows: Iterable[tuple[int, object]]) -> None:
        """Insert a table's rows, given with their places in the file and in id order, a batch
        at a time."""
        self.order_check(table)
        plain = _plain_fields(table)
        batch: list[tuple[str, JsonObject]] = []
        previous: int | None = None
        try:
            for index, item in rows:
                row = _row_check(table, index, item)
                where = f"{table_path(table)}[{index}]"
                if previous is not None and row["id"] <= previous:
                    if row["id"] == previous:
                        raise BackupRefused(f"{where}: id {row['id']} appears twice")
                    raise BackupRefused(
                        f"{where}: id {row['id']} comes after id {previous} (a backup lists"
                        " each table's rows in id order)"
                    )
                previous = row["id"]
                batch.append((where, row))
                if len(batch) == INSERT_ROWS:
                    self.batch_load(table, plain, batch)
                    batch = []
            if batch:
                self.batch_load(table, plain, batch)
        except IntegrityError as error:
            raise BackupRefused(
                f"{table.key}: the rows break a rule of the database ({error})"
            ) from error

    def order_check(self, table: Table) -> None:
        """Refuse a table met twice, or after a table whose rows needed its ids."""
        if table.key in self.loaded:
            raise BackupRefused(f"'{table_path(table)}' appears twice")
        if table.key in self.needed_by:
            raise BackupRefused(
                f"'{table_path(table)}' comes after '{self.needed_by[table.key]}', which refers"
                " to it (a backup lists every table before those referring to it)"
            )
        for key in _dependencies(table) - self.loaded:
            self.needed_by.setdefault(key, table_path(table))
        self.loaded.add(table.key)

    def batch_load(
        self, table: Table, plain: list[models.Field[Any, Any]], batch: list[tuple[str, JsonObject]]
    ) -> None:
        mapping = self.ids.setdefault(table.key, {})
        wheres = [where for where, _ in batch]
        m2m = [_codes_of(table, row, where) for where, row in batch]
        # The rows are built as the insert takes them, so what takes a query is done first:
        # the users (created at first sight) here, and rows with ids to reserve (a merge's
        # absorbed study) are all built before.
        for where, row in batch:
            for name in table.users:
                self.user(row.get(name), f"{where}.{name}")
        now = timezone.now()
        auto_times = [f for f in plain if isinstance(f, models.DateField) and _is_auto(f)]

        def built() -> Iterator[models.Model]:
            for where, row in batch:
                obj = table.model(**self.row_values(table, plain, row, where))
                for model_field in auto_times:
                    if getattr(obj, model_field.attname) is None:
                        setattr(obj, model_field.attname, now)
                yield obj

        objects: Iterable[models.Model] = list(built()) if table.id_fields else built()
        created = self.inserted(table, objects, wheres)
        for (_, row), obj in zip(batch, created, strict=True):
            mapping[row["id"]] = obj.pk
        for name, target in table.by_code.items():
            self.load_by_code(table, name, target, created, m2m, wheres)
        if table.snapshot:
            self.load_snapshots(table, [row for _, row in batch], created, wheres)
        if table.queue_priority:
            self.load_priorities([(where, row) for where, row in batch], created)

    @staticmethod
    def load_priorities(batch: list[tuple[str, JsonObject]], created: list[models.Model]) -> None:
        """The studies' queue priorities (their rows' "priority", in their current stage)."""
        priorities = []
        for (where, row), study in zip(batch, created, strict=True):
            value = row.get("priority")
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise BackupRefused(f"{where}.priority: must be a number or null")
            stage_id = getattr(study, "current_stage_id", None)
            if stage_id is not None:
                priorities.append(
                    StudyPriority(study_id=study.pk, stage_id=stage_id, priority=float(value))
                )
        StudyPriority.objects.bulk_create(priorities)

    def row_values(
        self, table: Table, plain: list[models.Field[Any, Any]], row: dict[str, Any], where: str
    ) -> dict[str, object]:
        """The model's field values for one row of the file: plain values checked, references
        to other rows and users remapped, the review set."""
        values: dict[str, object] = {}
        for model_field in plain:
            if model_field.name in row:
                values[model_field.attname] = _python_value(
                    model_field, row[model_field.name], f"{where}.{model_field.name}"
                )
        for attname, target in table.refs.items():
            name = attname.removesuffix("_id")
            values[attname] = self.ref_for(target, row.get(name), f"{where}.{name}")
        for name in table.users:
            values[name] = self.user(row.get(name), f"{where}.{name}")
        for name, target in table.id_fields.items():
            if row.get(name) is not None:
                values[name] = self.located(where, self.id_for, target, row[name], "own")
        for name, target in table.id_lists.items():
            ids = row.get(name) or []
            if not isinstance(ids, list):
                raise BackupRefused(f"{where}.{name}: must be a list of ids")
            values[name] = [
                new for new in (self.id_for(target, i, "opt") for i in ids) if new is not None
            ]
        if table.review_path == "review":
            values["review"] = self.review
        if table.model is AuditEvent:
            values["object_id"] = self.audit_object_id(row)
        return values

    def ref_for(self, target: str, old: object, where: str) -> int | None:
        """The new id of a row of `target` a foreign key names; refused when not in the file."""
        if old is None:
            return None
        new = self.ids.get(target, {}).get(old) if isinstance(old, int) and _is_id(old) else None
        if new is None and target not in self.loaded:
            raise BackupRefused(
                f"{where}: refers to {target} id {old!r}, but the file has no"
                f" '{table_path(TABLE_BY_KEY[target])}' before it"
            )
        if new is None:
            raise BackupRefused(f"{where}: refers to {target} id {old!r}, not in the file")
        return new

    def inserted(
        self, table: Table, objects: Iterable[models.Model], wheres: list[str]
    ) -> list[models.Model]:
        """Insert a batch; a row breaking one of the model's check constraints is refused with
        its path.

        The database checks every row as it goes in; only when it refuses the batch (an error
        about the whole table) is each row checked on its own to name the culprit: one query
        per row and constraint, which a table of a million rows must not pay up front.
        """
        if not _check_constraints(table):
            return _insert_as_given(table.model, objects, len(wheres))
        sent: list[models.Model] = []
        try:
            with transaction.atomic():  # a savepoint: the refused batch alone is undone
                return _insert_as_given(table.model, _kept(objects, sent), len(wheres))
        except IntegrityError:
            self.check_constraints(table, sent, wheres[: len(sent)])
            raise

    @staticmethod
    def check_constraints(table: Table, objects: list[models.Model], wheres: list[str]) -> None:
        """Refuse a row breaking one of the model's check constraints, naming its path."""
        for constraint in _check_constraints(table):
            condition = constraint.condition
            names = sorted(condition.referenced_base_fields) if isinstance(condition, Q) else []
            for obj, where in zip(objects, wheres, strict=True):
                try:
                    # BaseConstraint.validate (Django 4.1+) is missing from django-stubs 5.2.
                    constraint.validate(table.model, obj)  # type: ignore[attr-defined]
                except ValidationError as error:
                    place = f"{where}.{names[0]}" if len(names) == 1 else where
                    raise BackupRefused(
                        f"{place}: breaks the rule {constraint.name} ({' '.join(error.messages)})"
                    ) from error

    def id_for(self, table_key: str, old: Any, how: str) -> int | None:
        """The new id of a row of the file (see `IdFor`); absorbed rows get a reserved id."""
        mapping = self.ids.setdefault(table_key, {})
        if isinstance(old, int) and old in mapping:
            return mapping[old]
        if how == "opt":
            return None
        if how == "own" and isinstance(old, int) and not isinstance(old, bool):
            mapping[old] = _reserve_id(TABLE_BY_KEY[table_key].model)
            return mapping[old]
        raise BackupRefused(f"refers to {table_key} id {old}, not in the file")

    @staticmethod
    def located(where: str, function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        try:
            return function(*args, **kwargs)
        except BackupRefused as error:
            raise BackupRefused(f"{where}: {error}") from error

    def load_snapshots(
        self, table: Table, rows: list[JsonObject], created: list[models.Model], wheres: list[str]
    ) -> None:
        """Rewrite merge snapshots once every row they may name has its new id.

        Rows a snapshot holds that are alive in the file (an undone merge) map to their new ids;
        absorbed rows get ids reserved from their tables, so an unmerge recreates them there.
        """
        for row, obj, where in zip(rows, created, wheres, strict=True):
            snapshot = row.get(table.snapshot)
            if snapshot is None:
                continue
            if not isinstance(snapshot, dict):
                raise BackupRefused(f"{where}: '{table.snapshot}' must be an object")

            def user_id(username: object, where: str = where) -> int | None:
                user = self.user(username, where)
                return user.pk if user is not None else None

            def id_for(table_key: str, old: Any, how: str, where: str = where) -> int | None:
                return self.located(where, self.id_for, table_key, old, how)

            converted = snapshot_convert(
                snapshot, id_for=id_for, user_for=user_id, review_id=self.review.pk, where=where
            )
            table.model._base_manager.filter(pk=obj.pk).update(**{table.snapshot: converted})

    def load_by_code(
        self,
        table: Table,
        name: str,
        target: str,
        created: list[models.Model],
        m2m: list[dict[str, list[str]]],
        wheres: list[str],
    ) -> None:
        target_model = TABLE_BY_KEY[target].model
        if target not in self.codes:
            codes = target_model._default_manager.filter(review=self.review)
            self.codes[target] = dict(codes.values_list("code", "pk"))
        by_code = self.codes[target]
        through = getattr(table.model, name).through
        source_column = f"{table.model._meta.model_name}_id"
        target_column = f"{target_model._meta.model_name}_id"
        links = []
        for obj, values, where in zip(created, m2m, wheres, strict=True):
            for code in values[name]:
                if code not in by_code:
                    raise BackupRefused(f"{where}.{name}: names unknown code {code!r}")
                links.append(through(**{source_column: obj.pk, target_column: by_code[code]}))
        _insert_as_given(through, links, len(links))

    def audit_object_id(self, row: JsonObject) -> str:
        """Point an audit event at the restored object when it is one of the backup's rows."""
        object_id = str(row.get("object_id") or "")
        table = TABLE_BY_MODEL_NAME.get(row.get("object_type") or "")
        if table is not None and object_id.isdigit():
            new = self.ids.get(table.key, {}).get(int(object_id))
            if new is not None:
                return str(new)
        if row.get("object_type") == "review" and object_id:
            return str(self.review.pk)
        return object_id


def header_check(data: object, expected_format: str) -> None:
    if not isinstance(data, dict):
        raise BackupRefused("the file must hold one JSON object")
    if data.get("format") != expected_format:
        raise BackupRefused(f"'format' must be {expected_format!r} (found {data.get('format')!r})")
    if data.get("version") != VERSION:
        raise BackupRefused(f"unsupported version {data.get('version')!r} (this slrweb reads 1)")


def review_settings_apply(*, review: Review, settings: object) -> None:
    """Copy the review-level protocol settings (title, mode, scale ...) onto a review."""
    if not isinstance(settings, dict):
        raise BackupRefused(f"'{PROTOCOL}.review' must be an object")
    for model_field in Review._meta.concrete_fields:
        if model_field.name in REVIEW_SKIP or model_field.name not in settings:
            continue
        where = f"{PROTOCOL}.review.{model_field.name}"
        value = _python_value(model_field, settings[model_field.name], where)
        setattr(review, model_field.attname, value)
    try:
        review.full_clean(exclude=["slug", "created_by"])
    except ValidationError as error:
        problems = [
            f"{PROTOCOL}.review.{name}: {' '.join(messages)}"
            for name, messages in error.message_dict.items()
        ]
        raise BackupRefused("; ".join(problems)) from error
    review.save()


def _rows_in_id_order(data: JsonObject, table: Table) -> list[tuple[int, JsonObject]]:
    """A table's rows of an object in memory, with their places, sorted by id."""
    rows = [
        (index, _row_check(table, index, row))
        for index, row in enumerate(section_rows(data, table))
    ]
    return sorted(rows, key=lambda item: int(item[1]["id"]))


def tables_load(
    *, review: Review, data: JsonObject, tables: list[Table], create_users: bool = True
) -> _Loader:
    """Insert the rows of `tables` from `data` into `review`; the loader keeps old -> new ids.

    Raises `BackupRefused` on a problem in the data; callers run it inside their transaction.
    """
    loader = _Loader(review=review, create_users=create_users, user_details={})
    for table in tables:
        loader.table_load(table, _rows_in_id_order(data, table))
    return loader


def refused(error: BackupRefused) -> ValidationError:
    return ValidationError(f"This file cannot be restored: {error}")


# ----- restoring, from an object in memory or from a file read as a stream -----------------

HEADER_KEYS = ("format", "version", "slug", "created_at", "created_by")


@dataclass(frozen=True)
class _Header:
    key: str
    value: object


@dataclass(frozen=True)
class _Users:
    users: Iterable[object]


@dataclass(frozen=True)
class _Settings:
    settings: object


@dataclass(frozen=True)
class _Rows:
    table: Table
    rows: Iterable[tuple[int, object]]  # each row with its place in the file


# A backup, as the restore takes it: the parts of the file in the order they come.
_Part = _Header | _Users | _Settings | _Rows


def _restored(parts: Iterable[_Part], slug: str | None) -> Review:
    """Create the review the parts describe; raises `BackupRefused` (run in a transaction)."""
    header: JsonObject = {}
    details: dict[str, JsonObject] = {}
    loader: _Loader | None = None
    checked = False
    for part in parts:
        if isinstance(part, _Header):
            header[part.key] = part.value
            continue
        if not checked:
            header_check(header, FORMAT)
            checked = True
        if isinstance(part, _Users):
            for user in part.users:
                if isinstance(user, dict) and isinstance(user.get("username"), str):
                    details[user["username"]] = user
                    if loader is not None:
                        loader.user_described(user["username"])
        elif isinstance(part, _Settings):
            if loader is not None:
                raise BackupRefused(f"'{PROTOCOL}.review' appears twice")
            review = _review_create(slug or header.get("slug"), part.settings)
            loader = _Loader(review=review, create_users=True, user_details=details)
        else:
            if loader is None:
                raise BackupRefused(f"'{PROTOCOL}.review' is missing before the tables")
            loader.table_load(part.table, part.rows)
    if not checked:
        header_check(header, FORMAT)
    if loader is None:
        raise BackupRefused(f"'{PROTOCOL}.review' is missing")
    review = loader.review
    review.created_by = loader.user(header.get("created_by"), "created_by")
    review.save(update_fields=["created_by"])
    if header.get("created_at"):
        created_at_field = Review._meta.get_field("created_at")
        created_at = _python_value(created_at_field, header["created_at"], "created_at")
        Review.objects.filter(pk=review.pk).update(created_at=created_at)
    if not review.memberships.filter(role=Membership.Role.OWNER).exists():
        raise BackupRefused("the review has no owner among its members")
    return review


def _review_create(slug: object, settings: object) -> Review:
    if not isinstance(slug, str) or not slug:
        raise BackupRefused("'slug' is missing")
    if Review.objects.filter(slug=slug).exists():
        raise BackupRefused(f"a review with slug {slug!r} already exists")
    if not isinstance(settings, dict):
        raise BackupRefused(f"'{PROTOCOL}.review' is missing")
    review = Review(slug=slug, title=str(settings.get("title") or slug))
    review.save()
    review_settings_apply(review=review, settings=settings)
    return review


def _restore(parts: Iterable[_Part], slug: str | None) -> Review:
    """All or nothing: one transaction; a refusal names the place in the file."""
    try:
        try:
            with transaction.atomic():
                review = _restored(parts, slug)
        except (DatabaseError, FieldDoesNotExist, TypeError, ValueError, AttributeError) as error:
            raise BackupRefused(str(error)) from error
    except BackupRefused as error:
        raise refused(error) from error
    return Review.objects.get(pk=review.pk)


def _parts_of_object(data: object) -> Iterator[_Part]:
    if not isinstance(data, dict):
        raise BackupRefused("the file must hold one JSON object")
    for key in HEADER_KEYS:
        if key in data:
            yield _Header(key, data[key])
    yield _Users(data.get("users") or [])
    protocol = data.get(PROTOCOL)
    yield _Settings(protocol.get("review") if isinstance(protocol, dict) else None)
    for table in TABLES:
        yield _Rows(table, _rows_in_id_order(data, table))


def review_import(*, data: JsonObject, slug: str | None = None) -> Review:
    """Restore a backup held in memory (see `review_export`) as a new review (all or nothing)."""
    return _restore(_parts_of_object(data), slug)


# ijson's backend (the C one where its wheel has it): its builder of items is fed the events
# one at a time.
_BACKEND = ijson.get_backend(ijson.backend)
_OPENING = frozenset({"start_map", "start_array"})
_CLOSING = frozenset({"end_map", "end_array"})
# Deeper than a row's values may be (root, section, table, row, then the value's own levels)
# plus a margin, so that a value a little too deep is refused with its path by
# `_json_depth_check`; anything deeper is refused while parsing, without building it.
MAX_FILE_DEPTH = MAX_JSON_DEPTH + 8


class _Events:
    """The parser events of a file (ijson's C backend, a chunk of READ_BYTES at a time), with
    their depth. Without their paths: a path is as long as its depth, and the parser makes the
    events of a whole chunk before any is looked at."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.events = ijson.basic_parse(stream, buf_size=READ_BYTES, use_float=True)
        self.depth = 0

    def next(self) -> tuple[str, Any]:
        try:
            event, value = next(self.events)
        except ijson.JSONError as error:
            raise BackupRefused(_not_json(error)) from error
        except StopIteration as error:
            raise BackupRefused("it is not a JSON file (it ends too early)") from error
        if event in _OPENING:
            self.depth += 1
            if self.depth > MAX_FILE_DEPTH:
                raise BackupRefused(f"nested deeper than {MAX_FILE_DEPTH} levels")
        elif event in _CLOSING:
            self.depth -= 1
        return str(event), value

    def end(self) -> None:
        """Refuse anything after the document."""
        try:
            extra = next(self.events, None)
        except ijson.JSONError as error:
            extra = error
        if extra is not None:
            raise BackupRefused("it is not a JSON file (something follows the object)")

    def value(self, event: str, value: object, where: str) -> object:
        """The value that starts with this event, built; a refusal names `where` (and the key
        of the value's own, when it is an object)."""
        builder = ijson.ObjectBuilder()
        builder.event(event, value)
        key = None
        inside = self.depth if event in _OPENING else self.depth + 1  # a scalar: nothing inside
        try:
            while self.depth >= inside:
                event, value = self.next()
                if event == "map_key" and self.depth == inside:
                    key = value
                builder.event(event, value)
        except BackupRefused as error:
            raise BackupRefused(f"{where}{f'.{key}' if key else ''}: {error}") from error
        return builder.value

    def skip(self, event: str) -> None:
        inside = self.depth if event in _OPENING else self.depth + 1
        while self.depth >= inside:
            self.next()

    def items(self, where: str) -> Iterator[tuple[int, object]]:
        """The items of the array just opened, one at a time, with their places.

        ijson's C builder builds them from the parser's events: one light step per event here,
        which only counts the depth (refused beyond MAX_FILE_DEPTH, like every other value) and
        notes the item's key being read.
        """
        built = ijson.utils.sendable_list()
        send = _BACKEND.parse_basecoro(_BACKEND.items_basecoro(built, "item")).send
        send(("start_array", None))
        depth = 0  # inside the array
        key = None
        index = 0
        while True:
            try:
                event = next(self.events)
            except ijson.JSONError as error:
                raise BackupRefused(f"{where}[{index}]: {_not_json(error)}") from error
            except StopIteration as error:
                raise BackupRefused("it is not a JSON file (it ends too early)") from error
            kind = event[0]
            if kind in _OPENING:
                depth += 1
                if self.depth + depth > MAX_FILE_DEPTH:
                    place = f"{where}[{index}]{f'.{key}' if key else ''}"
                    raise BackupRefused(f"{place}: nested deeper than {MAX_FILE_DEPTH} levels")
            elif kind in _CLOSING:
                if not depth:  # the array's own end
                    break
                depth -= 1
            elif kind == "map_key" and depth == 1:
                key = event[1]
            send(event)
            if built:
                for item in built:
                    yield index, item
                    index += 1
                    key = None
                del built[:]
        self.depth -= 1


def _not_json(error: Exception) -> str:
    message = error.args[0] if error.args else error
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return f"it is not a JSON file ({str(message).splitlines()[0]})"


def _parts_of_stream(stream: IO[bytes]) -> Iterator[_Part]:
    events = _Events(stream)
    if events.next()[0] != "start_map":
        raise BackupRefused("the file must hold one JSON object")
    sections: dict[str | None, dict[str, Table]] = {PROTOCOL: {}, None: {}}
    for table in TABLES:
        sections[table.section][table.key] = table
    yield from _parts_of_section(events, sections, None)
    events.end()


def _parts_of_section(
    events: _Events, sections: dict[str | None, dict[str, Table]], section: str | None
) -> Iterator[_Part]:
    """The parts of the object just opened (the whole file, or its protocol section)."""
    while True:
        event, key = events.next()
        if event == "end_map":
            return
        event, value = events.next()
        if section is None and key in HEADER_KEYS:
            yield _Header(key, events.value(event, value, key))
        elif section is None and key == "users":
            if event != "start_array":
                raise BackupRefused("'users' must be a list")
            yield from _drained(_Users(user for _, user in events.items("users")))
        elif section is None and key == PROTOCOL:
            if event != "start_map":
                raise BackupRefused(f"'{PROTOCOL}' must be an object")
            yield from _parts_of_section(events, sections, PROTOCOL)
        elif section == PROTOCOL and key == "review":
            yield _Settings(events.value(event, value, f"{PROTOCOL}.review"))
        elif key in sections[section]:
            table = sections[section][key]
            if event != "start_array":
                raise BackupRefused(f"'{table_path(table)}' must be a list")
            yield from _drained(_Rows(table, events.items(table_path(table))))
        else:
            events.skip(event)


def _drained(part: _Users | _Rows) -> Iterator[_Part]:
    """Yield a part that reads the file, then read past what its consumer left of it."""
    yield part
    for _ in part.users if isinstance(part, _Users) else part.rows:
        pass


def review_restore(*, stream: IO[bytes], slug: str | None = None) -> Review:
    """Restore a backup file written by `review_backup_write` (or, before, `export_review`),
    reading it as it goes: memory stays bounded whatever the file's size. All or nothing."""
    return _restore(_parts_of_stream(stream), slug)
