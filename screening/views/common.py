"""Small helpers shared by several view modules (answers and form errors, not logic)."""

import csv
import io

from django.http import Http404, HttpResponse

from ..models import Review, Study
from ..selectors.quality import quality_study_get


def form_errors(form) -> str:
    """A bound form's errors as one sentence for a message or a 400/422 answer."""
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


def included_study_or_404(review: Review, study_id: int) -> Study:
    """An included study of the review (quality and extraction work on these), or 404."""
    study = quality_study_get(review=review, study_id=study_id)
    if study is None:
        raise Http404("No such included study.")
    return study


def csv_response(rows, *, filename: str) -> HttpResponse:
    """CSV a spreadsheet opens right: UTF-8 with a byte order mark, quoted where needed."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    response = HttpResponse("\ufeff" + buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
