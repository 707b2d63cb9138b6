"""Full texts: upload the PDF, mark it not retrievable, and serve it to review members only."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from ..access import Need, review_access
from ..forms import StyledFormMixin
from ..models import FullText, Study
from ..selectors.screening import fulltext_counts, fulltext_studies
from ..services.fulltext import fulltext_mark_not_retrievable, fulltext_upload


class UploadForm(StyledFormMixin, forms.Form):
    file = forms.FileField(label="PDF")


class NotRetrievableForm(StyledFormMixin, forms.Form):
    reason = forms.CharField(max_length=1000, label="Why it could not be retrieved")


def _context(access, *, error_for=None, error="") -> dict:
    review = access.review
    return {
        "access": access,
        "review": review,
        "studies": fulltext_studies(review=review)[:1000],
        "counts": fulltext_counts(review=review),
        "max_mb": settings.FULLTEXT_MAX_BYTES // 1_048_576,
        "error_for": error_for,
        "error": error,
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


@require_GET
@login_required
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
    path("<int:study_id>/upload/", fulltext_upload_view, name="fulltext_upload"),
    path(
        "<int:study_id>/not-retrievable/", fulltext_not_retrievable, name="fulltext_not_retrievable"
    ),
    path("<int:study_id>/pdf/", fulltext_download, name="fulltext_download"),
]
