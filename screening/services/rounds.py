"""Search rounds: the owner opens a search update, whose runs the imports then fill."""

import datetime
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from ..domain.rounds import wrong_library
from ..models import ImportBatch, Review, SearchRound, SearchRun, SearchString, Source
from .audit import audit_event_record
from .funnel import funnel_schedule
from .imports import batch_create
from .stale import version_check


@dataclass(frozen=True)
class RoundRun:
    """One search string re-run in one source for the new round, with the library's count."""

    search_string: SearchString
    source: Source
    hits_reported: int


def _runs_check(*, review: Review, run_on: datetime.date, runs: list[RoundRun]) -> None:
    """Refuse (ValidationError) a round without runs, in the future, with a string run twice
    in one source, a string or source of another review, or a negative count."""
    if not runs:
        raise ValidationError("Give the hits of at least one search re-run in this round.")
    if run_on > datetime.date.today():
        raise ValidationError("The searches of a round cannot be run in the future.")
    pairs = [(run.search_string.pk, run.source.pk) for run in runs]
    if len(set(pairs)) != len(pairs):
        raise ValidationError("Each search string is run once per source in a round.")
    for run in runs:
        if run.search_string.review_id != review.pk or run.source.review_id != review.pk:
            raise ValidationError("The search strings and sources must belong to this review.")
        if run.hits_reported < 0:
            raise ValidationError("Hits cannot be negative.")


def _runs_after_earlier(*, run_on: datetime.date, runs: list[RoundRun]) -> None:
    """Each re-run must come after every earlier run of that string in that source."""
    for run in runs:
        last = (
            SearchRun.objects.filter(search_string=run.search_string, source=run.source)
            .exclude(run_on=None)
            .aggregate(last=Max("run_on"))["last"]
        )
        if last is not None and run_on <= last:
            raise ValidationError(
                f"“{run.search_string.text[:60]}” was last run in {run.source.name} on "
                f"{last:%Y-%m-%d}: a new round's searches must be run after that."
            )


def _round_audit(
    *,
    review: Review,
    user: User,
    search_round: SearchRound,
    created: list[SearchRun],
    run_on: datetime.date,
    note: str,
) -> None:
    audit_event_record(
        review=review,
        actor=user,
        action="search_round.open",
        obj=search_round,
        after={
            "number": search_round.number,
            "run_on": run_on.isoformat(),
            "note": note,
            "runs": [
                {
                    "id": created_run.pk,
                    "search_string": created_run.search_string.text,
                    "source": created_run.source.name,
                    "hits_reported": created_run.hits_reported,
                }
                for created_run in created
            ],
        },
    )


def round_open(
    *,
    review: Review,
    user: User,
    run_on: datetime.date,
    runs: list[RoundRun],
    seen_version: int | None,
    force: bool = False,
    note: str = "",
) -> SearchRound:
    """Open the review's next search round with one search run per string and source.

    `seen_version` is how many rounds the user saw opened (0: only round 1): if another owner
    opened one since, StaleWrite is raised (unless `force`) so one update is not opened twice.

    Raises ValidationError (nothing saved) when no run is given, a string or source belongs to
    another review, a count is negative, the date is in the future or not after every earlier
    run of that string in that source, or a string is listed twice for one source.
    """
    _runs_check(review=review, run_on=run_on, runs=runs)
    with transaction.atomic():
        # The review's row lock serialises two owners opening a round at once.
        review = Review.objects.select_for_update().get(pk=review.pk)
        _runs_after_earlier(run_on=run_on, runs=runs)
        previous = review.search_rounds.select_related("opened_by").order_by("number").last()
        opened = review.search_rounds.count()
        version_check(
            stored_version=opened,
            seen_version=seen_version,
            force=force,
            what="Opening a new search round",
            current=(
                f"round {previous.number} was opened on {previous.opened_at:%Y-%m-%d}"
                if previous
                else "no update has been opened"
            ),
            by=previous.opened_by.username if previous and previous.opened_by else "",
            at=previous.opened_at if previous else None,
        )
        latest = previous.number if previous else 1
        search_round = SearchRound.objects.create(
            review=review, number=latest + 1, opened_by=user, note=note
        )
        created = SearchRun.objects.bulk_create(
            [
                SearchRun(
                    review=review,
                    search_string=run.search_string,
                    source=run.source,
                    run_on=run_on,
                    hits_reported=run.hits_reported,
                    round=search_round,
                )
                for run in runs
            ]
        )
        if force and (seen_version or 0) != opened:
            audit_event_record(
                review=review,
                actor=user,
                action="search_round.overwrite",
                obj=search_round,
                before={"version": opened, "seen_version": seen_version},
                after={"number": search_round.number},
            )
        _round_audit(
            review=review,
            user=user,
            search_round=search_round,
            created=created,
            run_on=run_on,
            note=note,
        )
        # The funnel becomes an updated review's: the new round's counts, the previous version.
        funnel_schedule(review_id=review.pk)
    return search_round


@dataclass(frozen=True)
class RoundFile:
    """One uploaded export for a round's search run."""

    name: str
    data: bytes


# How much of a file is read to tell which library exported it.
LIBRARY_SNIFF_BYTES = 256 * 1024


def round_files_add(
    *,
    review: Review,
    search_run: SearchRun,
    user: User,
    files: list[RoundFile],
    format: str | None = None,
) -> list[ImportBatch]:
    """Queue a round's export files for import into one of its search runs, all or none.

    Raises ValidationError (nothing saved, every file's problem named) when the run is not a
    round's, a file is clearly another library's export than the run's source (a Scopus CSV in
    the IEEE Xplore run), or a file is refused by the import checks.
    """
    if search_run.review_id != review.pk or search_run.round_id is None:
        raise ValidationError("Choose a search run of one of this review's rounds.")
    problems = []
    for upload in files:
        head = upload.data[:LIBRARY_SNIFF_BYTES].decode("utf-8", errors="replace")
        reason = wrong_library(head, search_run.source.name)
        if reason:
            problems.append(f"{upload.name}: {reason}")
    if problems:
        raise ValidationError(problems)
    created: list[ImportBatch] = []
    try:
        with transaction.atomic():
            for upload in files:
                created.append(
                    _file_add(
                        review=review, search_run=search_run, user=user, upload=upload, fmt=format
                    )
                )
    except ValidationError:
        # The rows went with the transaction; the files stored for them go too.
        for batch in created:
            batch.file.delete(save=False)
        raise
    return created


def _file_add(
    *, review: Review, search_run: SearchRun, user: User, upload: RoundFile, fmt: str | None
) -> ImportBatch:
    try:
        return batch_create(
            review=review,
            source=search_run.source,
            uploaded_by=user,
            file_name=upload.name,
            data=upload.data,
            search_run=search_run,
            format=fmt,
        )
    except ValidationError as error:
        raise ValidationError(f"{upload.name}: {' '.join(error.messages)}") from error
