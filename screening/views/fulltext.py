"""Full texts: upload the PDF, mark it not retrievable, and serve it to review members only."""

from csp.decorators import csp_replace
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_POST

from ..access import Need, review_access
from ..forms.fulltext import BulkUploadForm, NotRetrievableForm, UploadForm
from ..models import FullText, Study
from ..selectors.screening import fulltext_counts, fulltext_studies
from ..services.fulltext import (
    BulkRow,
    fulltext_bulk_upload,
    fulltext_mark_not_retrievable,
    fulltext_upload,
)
from ..uploads import upload_refusals


def _context(access, *, error_for=None, error="", bulk_error="") -> dict:
    review = access.review
    return {
        "access": access,
        "review": review,
        "studies": fulltext_studies(review=review)[:1000],
        "counts": fulltext_counts(review=review),
        "max_mb": settings.FULLTEXT_MAX_BYTES // 1_048_576,
        "error_for": error_for,
        "error": error,
        "bulk_error": bulk_error,
    }


def _render(request, context, status=200):
    template = "screening/fulltext/_list.html" if request.htmx else "screening/fulltext/list.html"
    return render(request, template, context, status=status)


def _after_write(request, access, message):
    if request.htmx:
        context = _context(access)
        context["message"] = message
        return _render(request, context)
    messages.success(request, message)
    return redirect("screening:fulltext_list", slug=access.review.slug)


@require_GET
@login_required
def fulltext_list(request, slug):
    access = review_access(request, slug)
    return _render(request, _context(access))


@require_POST
@login_required
def fulltext_upload_view(request, slug, study_id):
    access = review_access(request, slug, Need.WRITE)
    study = get_object_or_404(Study, pk=study_id, review=access.review)
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render(
            request, _context(access, error_for=study.pk, error="Choose a PDF file."), status=422
        )
    upload = form.cleaned_data["file"]
    if upload.size > settings.FULLTEXT_MAX_BYTES:
        error = f"The file is larger than the {settings.FULLTEXT_MAX_BYTES // 1_048_576} MB limit."
        return _render(request, _context(access, error_for=study.pk, error=error), status=422)
    try:
        fulltext_upload(
            review=access.review,
            study=study,
            user=request.user,
            file_name=upload.name,
            upload=upload,
        )
    except ValidationError as exc:
        error = " ".join(exc.messages)
        return _render(request, _context(access, error_for=study.pk, error=error), status=422)
    return _after_write(request, access, f"PDF stored for study {study.pk}.")


@require_POST
@login_required
def fulltext_not_retrievable(request, slug, study_id):
    access = review_access(request, slug, Need.WRITE)
    study = get_object_or_404(Study, pk=study_id, review=access.review)
    form = NotRetrievableForm(request.POST)
    if not form.is_valid():
        error = "Say why the full text could not be retrieved."
        return _render(request, _context(access, error_for=study.pk, error=error), status=422)
    try:
        fulltext_mark_not_retrievable(
            review=access.review, study=study, user=request.user, reason=form.cleaned_data["reason"]
        )
    except ValidationError as exc:
        error = " ".join(exc.messages)
        return _render(request, _context(access, error_for=study.pk, error=error), status=422)
    return _after_write(request, access, f"Study {study.pk} marked not retrievable.")


@require_POST
@login_required
def fulltext_bulk_upload_view(request, slug):
    access = review_access(request, slug, Need.WRITE)
    form = BulkUploadForm(request.POST, request.FILES)
    refusals = upload_refusals(request)
    files = form.cleaned_data["files"] if form.is_valid() else []
    if not files and not refusals:
        context = _context(access, bulk_error="Choose one or more PDFs, or a zip of PDFs.")
        return _render(request, context, status=422)
    rows = fulltext_bulk_upload(
        review=access.review, user=request.user, files=[(f.name, f) for f in files]
    )
    rows += [BulkRow(file="(upload)", status="refused", reason=why) for why in refusals]
    context = _context(access)
    context["bulk_report"] = {
        "rows": rows,
        "attached": sum(row.status == "attached" for row in rows),
        "unmatched": sum(row.status == "unmatched" for row in rows),
        "refused": sum(row.status == "refused" for row in rows),
    }
    return _render(request, context)


# The PDF is shown in a frame beside the quality and extraction forms: this response alone may
# be framed, and only by our own pages.
@require_GET
@login_required
@xframe_options_sameorigin
# django-csp types its decorators for views that take the request alone.
@csp_replace({"frame-ancestors": ["'self'"]})  # type: ignore[arg-type]
def fulltext_download(request, slug, study_id):
    access = review_access(request, slug)
    full_text = get_object_or_404(
        FullText,
        study_id=study_id,
        study__review=access.review,
        status=FullText.Status.UPLOADED,
    )
    if not full_text.file:
        raise Http404("No PDF stored.")
    response = FileResponse(
        full_text.file.open("rb"),
        content_type="application/pdf",
        as_attachment=False,
        # Our own name, never the uploaded one (which may end in .html or carry quotes).
        filename=f"{access.review.slug}-study-{study_id}.pdf",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


urlpatterns = [
    path("", fulltext_list, name="fulltext_list"),
    path("bulk/", fulltext_bulk_upload_view, name="fulltext_bulk_upload"),
    path("<int:study_id>/upload/", fulltext_upload_view, name="fulltext_upload"),
    path(
        "<int:study_id>/not-retrievable/", fulltext_not_retrievable, name="fulltext_not_retrievable"
    ),
    path("<int:study_id>/pdf/", fulltext_download, name="fulltext_download"),
]
