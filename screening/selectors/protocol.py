"""Reads of the protocol: the review list, Table 1 and the protocol page's sections."""

from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, F, QuerySet, Sum

from ..models import AuditEvent, Membership, Review, SearchRun, SearchString, Source


def reviews_for_user(*, user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("review").order_by("review__title")


def search_run_matrix(*, review: Review) -> dict[str, Any]:
    """Table 1: hits reported per search string (rows) and source (columns), with totals.

    A cell sums the runs of its string in its source (one per date); `cells` also tells the
    latest run date, which the inline editor proposes.
    """
    sources = list(review.sources.all())
    strings = list(review.search_strings.all())
    cells: dict[tuple[int, int], dict[str, Any]] = {}
    for row in (
        SearchRun.objects.filter(review=review)
        .values("search_string_id", "source_id")
        .annotate(hits=Sum("hits_reported"), runs=Count("id"))
    ):
        cells[(row["search_string_id"], row["source_id"])] = row
    rows: list[dict[str, Any]] = []
    for string in strings:
        row_cells: list[dict[str, Any]] = []
        for source in sources:
            cell = cells.get((string.id, source.id))
            row_cells.append(
                {
                    "source": source,
                    "hits": cell["hits"] if cell else None,
                    "runs": cell["runs"] if cell else 0,
                }
            )
        rows.append(
            {
                "string": string,
                "cells": row_cells,
                "hits": [cell["hits"] for cell in row_cells],
                "total": sum(cell["hits"] or 0 for cell in row_cells),
            }
        )
    column_totals = [
        sum((cells.get((s.id, src.id)) or {}).get("hits", 0) for s in strings) for src in sources
    ]
    return {
        "sources": sources,
        "rows": rows,
        "column_totals": column_totals,
        "grand_total": sum(column_totals),
    }


def search_run_latest(
    *, review: Review, search_string: SearchString, source: Source
) -> SearchRun | None:
    return (
        SearchRun.objects.filter(review=review, search_string=search_string, source=source)
        .order_by(F("run_on").desc(nulls_last=True), "-id")
        .first()
    )


def team_members(*, review: Review) -> QuerySet[Membership]:
    return review.memberships.select_related("user").order_by("role", "user__username")


def audit_recent(*, review: Review, limit: int = 15) -> QuerySet[AuditEvent]:
    return review.audit_events.select_related("actor")[:limit]
