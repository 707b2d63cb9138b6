"""Reads: querysets and aggregates for the views, with no N+1."""

from django.db.models import QuerySet, Sum

from ..models import Membership, Review, SearchRun


def reviews_for_user(*, user) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("review").order_by("review__title")


def search_run_matrix(*, review: Review) -> dict:
    """Table 1: hits reported per search string (rows) and source (columns), with totals."""
    sources = list(review.sources.all())
    strings = list(review.search_strings.all())
    cells: dict[tuple[int, int], int] = {}
    for row in (
        SearchRun.objects.filter(review=review)
        .values("search_string_id", "source_id")
        .annotate(hits=Sum("hits_reported"))
    ):
        cells[(row["search_string_id"], row["source_id"])] = row["hits"]
    rows = []
    for string in strings:
        values = [cells.get((string.id, source.id)) for source in sources]
        rows.append({"string": string, "hits": values, "total": sum(v or 0 for v in values)})
    column_totals = [sum(cells.get((s.id, src.id), 0) for s in strings) for src in sources]
    return {
        "sources": sources,
        "rows": rows,
        "column_totals": column_totals,
        "grand_total": sum(column_totals),
    }
