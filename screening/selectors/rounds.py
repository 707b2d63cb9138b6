"""Search rounds: the review's rounds and the diff of one round against the earlier ones."""

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, Q

from ..domain.rounds import RecordText, earlier_counterpart, record_changes
from ..models import Record, Review, SearchRound, SearchRun
from .screening import decisions_visible_by_study

FIRST_ROUND = 1
DIFF_KINDS = ("new", "existing", "changed")


def rounds_list(*, review: Review) -> list[dict[str, Any]]:
    """Round 1 (the original searches, runs without a round) and every opened round, each with
    its runs and how many records were imported into them."""
    runs = list(
        SearchRun.objects.filter(review=review)
        .select_related("search_string", "source", "round")
        .annotate(records=Count("batches__records"))
    )
    opened = list(review.search_rounds.select_related("opened_by"))
    rounds: list[dict[str, Any]] = [{"number": FIRST_ROUND, "round": None, "runs": []}]
    rounds += [{"number": r.number, "round": r, "runs": []} for r in opened]
    by_number = {entry["number"]: entry for entry in rounds}
    for run in runs:
        by_number[run.round.number if run.round else FIRST_ROUND]["runs"].append(run)
    for entry in rounds:
        entry["records"] = sum(run.records for run in entry["runs"])
        entry["hits_reported"] = sum(run.hits_reported for run in entry["runs"])
    return rounds


def round_get(*, review: Review, number: int) -> SearchRound | None:
    return review.search_rounds.filter(number=number).select_related("opened_by").first()


def round_runs(*, search_round: SearchRound) -> list[SearchRun]:
    return list(search_round.runs.select_related("search_string", "source"))


def _earlier_than(number: int) -> Q:
    """Records imported before round `number`: round 1's have no round (or no search run)."""
    return Q(batch__search_run__round__isnull=True) | Q(batch__search_run__round__number__lt=number)


def _text(row: dict[str, Any]) -> RecordText:
    return RecordText(
        key=row["id"],
        source_id=row["batch__source_id"],
        title=row["title"],
        abstract=row["abstract"],
        doi=row["doi"],
    )


@dataclass
class RoundDiff:
    """A round's records sorted against the earlier rounds; the kinds are disjoint."""

    records: int = 0
    pending: int = 0  # not yet deduplicated
    new: list[int] = field(default_factory=list)  # record ids whose study is first seen here
    existing: list[int] = field(default_factory=list)  # already in the review, unchanged
    changed: dict[int, tuple[str, ...]] = field(default_factory=dict)  # record id -> fields
    earlier: dict[int, int] = field(default_factory=dict)  # record id -> earlier record id
    new_studies: int = 0

    def ids(self, kind: str) -> list[int]:
        if kind == "changed":
            return list(self.changed)
        return {"new": self.new, "existing": self.existing}[kind]


def round_diff(*, review: Review, search_round: SearchRound) -> RoundDiff:
    """Sort the round's records: new (their study has no earlier record), already in the review
    unchanged, or changed (title, abstract or DOI differ from the earlier record)."""
    columns = ("id", "study_id", "batch__source_id", "title", "abstract", "doi")
    rows = list(
        Record.objects.filter(review=review, batch__search_run__round=search_round)
        .order_by("id")
        .values(*columns)
    )
    diff = RoundDiff(records=len(rows))
    study_ids = {row["study_id"] for row in rows if row["study_id"] is not None}
    earlier_by_study: dict[int, list[dict[str, Any]]] = {}
    for row in (
        Record.objects.filter(study_id__in=study_ids)
        .filter(_earlier_than(search_round.number))
        .order_by("id")
        .values(*columns)
    ):
        earlier_by_study.setdefault(row["study_id"], []).append(row)
    new_studies: set[int] = set()
    for row in rows:
        if row["study_id"] is None:
            diff.pending += 1
            continue
        earlier_rows = earlier_by_study.get(row["study_id"], [])
        if not earlier_rows:
            diff.new.append(row["id"])
            new_studies.add(row["study_id"])
            continue
        counterpart = earlier_counterpart(_text(row), [_text(e) for e in earlier_rows])
        diff.earlier[row["id"]] = counterpart.key
        changes = record_changes(_text(row), counterpart)
        if changes:
            diff.changed[row["id"]] = changes
        else:
            diff.existing.append(row["id"])
    diff.new_studies = len(new_studies)
    return diff


def round_diff_rows(
    *, review: Review, diff: RoundDiff, record_ids: list[int], user: User
) -> list[dict[str, Any]]:
    """One page of a diff kind: each record with its study, the earlier record it was compared
    with, what changed, and the study's decisions this user may see (blind rules hold)."""
    records = {
        r.pk: r
        for r in Record.objects.filter(pk__in=record_ids).select_related(
            "batch__source", "study__current_stage"
        )
    }
    earlier = {
        r.pk: r
        for r in Record.objects.filter(
            pk__in=[diff.earlier[i] for i in record_ids if i in diff.earlier]
        ).select_related("batch__source")
    }
    studies = [study_id for i in record_ids if (study_id := records[i].study_id) is not None]
    decisions = decisions_visible_by_study(review=review, study_ids=studies, user=user)
    return [
        {
            "record": records[i],
            "study": records[i].study,
            "earlier": earlier.get(diff.earlier[i]) if i in diff.earlier else None,
            "changes": diff.changed.get(i, ()),
            "decisions": decisions.get(study_id, []) if study_id is not None else [],
        }
        for i in record_ids
        for study_id in [records[i].study_id]
    ]
