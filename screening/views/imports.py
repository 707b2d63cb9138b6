"""Imports: upload export files, watch them import, read each file's report, map unknown
columns, and reconcile Table 1 (hits reported) with what was imported."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from ..access import Need, review_access
from ..forms import StyledFormMixin
from ..models import ImportBatch, SearchRun, Source
from ..selectors.imports import (
    batch_get,
    batch_list,
    batch_records_sample,
    import_reconciliation,
)
from ..services.imports import (
    FORMAT_CHOICES,
    MAPPABLE_FIELDS,
    batch_create,
    batch_delete,
    batch_mapping_set,
    batch_retry,
    source_resolve,
)
from ..services.queue import BROKER_DOWN_MESSAGE
from ..uploads import upload_refusals

# Sent with the progress fragment of a finished import: the Table 1 reconciliation listens.
IMPORT_FINISHED_EVENT = "import-finished"


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(item, initial) for item in data]
        return [single(data, initial)]


class _ReviewChoicesForm(forms.Form):
    """Sets the review's choices before StyledFormMixin looks at the bound form's errors."""

    def __init__(self, *args, review, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source"].queryset = review.sources.all()
        self.fields["search_run"].queryset = review.search_runs.select_related(
            "search_string", "source"
        )
        self.fields["search_run"].label_from_instance = lambda run: (
            f"{run.source.name}: {run.search_string.text[:80]}"
            + (f" ({run.run_on})" if run.run_on else "")
        )


class UploadForm(StyledFormMixin, _ReviewChoicesForm):
    files = MultipleFileField(
        required=False,
        label="Export files",
        help_text="One or more files: RIS, BibTeX, CSV/TSV/XLSX, MEDLINE (.nbib), Web of Science "
        "plain text, EndNote XML or tagged text, ProQuest text. The format is detected from the "
        "content.",
    )
    source = forms.ModelChoiceField(
        queryset=Source.objects.none(),
        required=False,
        label="Source (digital library)",
        empty_label="—",
    )
    new_source = forms.CharField(
        max_length=120, required=False, label="…or a new source", help_text="e.g. Scopus"
    )
    search_run = forms.ModelChoiceField(
        queryset=SearchRun.objects.none(),
        required=False,
        label="Search run (optional)",
        empty_label="Not tied to a search run",
    )
    format = forms.ChoiceField(
        required=False,
        choices=FORMAT_CHOICES,
        label="Format",
    )

    def clean(self):
        data = super().clean()
        source, new_source = data.get("source"), (data.get("new_source") or "").strip()
        if bool(source) == bool(new_source):
            raise ValidationError("Choose an existing source or name a new one (not both).")
        run = data.get("search_run")
        if run is not None and source is not None and run.source_id != source.pk:
            self.add_error("search_run", "That search run was made in another source.")
        return data


class ColumnMapForm(StyledFormMixin, forms.Form):
    def __init__(self, *args, columns: list[str], initial_map: dict, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", "— not in this file —")] + [(c, c) for c in columns]
        for name, label in MAPPABLE_FIELDS:
            self.fields[name] = forms.ChoiceField(
                choices=choices,
                required=name == "title",
                label=label,
                initial=initial_map.get(name, ""),
            )


def _import_access(request, slug):
    access = review_access(request, slug, Need.WRITE)
    if not access.can_import:
        raise PermissionDenied(
            "Only the review's owners, and reviewers an owner allowed to import, may upload "
            "or manage export files; ask an owner to allow it on the Team page."
        )
    return access


def _batch_or_404(review, batch_id):
    batch = batch_get(review=review, batch_id=batch_id)
    if batch is None:
        raise Http404("No such import.")
    return batch


def _list_context(access, form):
    review = access.review
    batches = list(batch_list(review=review))
    return {
        "access": access,
        "review": review,
        "form": form,
        "batches": batches,
        "reconciliation": import_reconciliation(review=review),
    }


@require_http_methods(["GET", "POST"])
@login_required
def import_list(request, slug):
    """The imports page: upload form, every file's status, Table 1 reconciliation."""
    if request.method == "GET":
        access = review_access(request, slug)
        form = UploadForm(review=access.review) if access.can_import else None
        template = (
            "screening/imports/_workspace.html" if request.htmx else "screening/imports/list.html"
        )
        return render(request, template, _list_context(access, form))
    access = _import_access(request, slug)
    review = access.review
    form = UploadForm(request.POST, request.FILES, review=review)
    # Files the upload handler dropped as they arrived (too large) are refused like the rest.
    refused = list(upload_refusals(request))
    created = []
    if form.is_valid():
        uploads = [upload for upload in form.cleaned_data["files"] if upload]
        if not uploads and not refused:
            form.add_error("files", "Choose at least one export file.")
        try:
            source = form.cleaned_data["source"] or source_resolve(
                review=review, name=form.cleaned_data["new_source"], actor=request.user
            )
        except ValidationError as error:
            form.add_error("new_source", error)
            uploads = []
        for upload in uploads:
            try:
                created.append(
                    batch_create(
                        review=review,
                        source=source,
                        uploaded_by=request.user,
                        file_name=upload.name,
                        data=upload,
                        search_run=form.cleaned_data["search_run"],
                        format=form.cleaned_data["format"] or None,
                    )
                )
            except ValidationError as error:
                refused.append(f"{upload.name}: {' '.join(error.messages)}")
    for message in refused:
        form.add_error(None, message)
    unsent = [batch for batch in created if batch.queued_at is None]
    if created and not refused and not request.htmx:
        messages.success(
            request,
            f"{len(created)} file{'s' if len(created) != 1 else ''} queued for import.",
        )
        if unsent:
            messages.warning(request, BROKER_DOWN_MESSAGE)
        return redirect("screening:import_list", slug=review.slug)
    status = 200 if created else 400
    context = _list_context(access, form if not created or refused else UploadForm(review=review))
    context["created"] = created
    context["broker_down"] = BROKER_DOWN_MESSAGE if unsent else ""
    template = (
        "screening/imports/_workspace.html" if request.htmx else "screening/imports/list.html"
    )
    return render(request, template, context, status=status)


@require_GET
@login_required
def import_detail(request, slug, batch_id):
    """One file's report: counts, warnings, skipped entries with line numbers, a sample."""
    access = review_access(request, slug)
    batch = _batch_or_404(access.review, batch_id)
    context = {
        "access": access,
        "review": access.review,
        "batch": batch,
        "records": batch_records_sample(batch=batch)
        if batch.status == ImportBatch.Status.DONE
        else [],
    }
    if request.htmx:
        return render(request, "screening/imports/_report.html", context)
    return render(request, "screening/imports/detail.html", context)


@require_GET
@login_required
def import_progress(request, slug, batch_id):
    """The polling fragment: it carries hx-trigger only while the import is unfinished."""
    access = review_access(request, slug)
    batch = _batch_or_404(access.review, batch_id)
    response = render(
        request, "screening/imports/_progress.html", {"batch": batch, "review": access.review}
    )
    if batch.status in {ImportBatch.Status.DONE, ImportBatch.Status.FAILED}:
        # The poll that sees the end tells the page, so Table 1 refreshes with the row.
        response["HX-Trigger"] = IMPORT_FINISHED_EVENT
    return response


@require_POST
@login_required
def import_retry(request, slug, batch_id):
    access = _import_access(request, slug)
    batch = _batch_or_404(access.review, batch_id)
    context = {"batch": batch, "review": access.review, "access": access}
    try:
        batch = batch_retry(batch=batch, user=request.user)
    except ValidationError as error:
        context["refusal"] = " ".join(error.messages)
        status = 400
    else:
        context["batch"] = batch
        context["broker_down"] = BROKER_DOWN_MESSAGE if batch.queued_at is None else ""
        status = 200
    if request.htmx:
        return render(request, "screening/imports/_report.html", context, status=status)
    if status == 400:
        messages.error(request, context["refusal"])
    elif context["broker_down"]:
        messages.warning(request, context["broker_down"])
    return redirect("screening:import_detail", slug=access.review.slug, batch_id=batch.pk)


@require_POST
@login_required
def import_delete(request, slug, batch_id):
    """Delete a failed import and its stored file (the same file may then be uploaded again)."""
    access = _import_access(request, slug)
    batch = _batch_or_404(access.review, batch_id)
    try:
        batch_delete(batch=batch, user=request.user)
    except ValidationError as error:
        context = {"batch": batch, "review": access.review, "access": access}
        context["refusal"] = " ".join(error.messages)
        if request.htmx:
            return render(request, "screening/imports/_report.html", context, status=400)
        messages.error(request, context["refusal"])
        return redirect("screening:import_detail", slug=access.review.slug, batch_id=batch.pk)
    messages.success(request, f"The import of {batch.original_name} was deleted.")
    url = reverse("screening:import_list", kwargs={"slug": access.review.slug})
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


@require_http_methods(["GET", "POST"])
@login_required
def import_columns(request, slug, batch_id):
    """The mapping step for a table whose columns match no known export."""
    access = _import_access(request, slug)
    batch = _batch_or_404(access.review, batch_id)
    columns = (batch.report or {}).get("columns") or []
    if not columns:
        raise Http404("This import has no columns waiting to be mapped.")
    form = ColumnMapForm(request.POST or None, columns=columns, initial_map=batch.column_map)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                batch_mapping_set(batch=batch, mapping=form.cleaned_data, user=request.user)
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, "Column mapping saved; the import is queued again.")
                url = reverse(
                    "screening:import_detail",
                    kwargs={"slug": access.review.slug, "batch_id": batch.pk},
                )
                if request.htmx:
                    return HttpResponseClientRedirect(url)
                return redirect(url)
        status = 400
    context = {"access": access, "review": access.review, "batch": batch, "form": form}
    template = (
        "screening/imports/_columns_form.html" if request.htmx else "screening/imports/columns.html"
    )
    return render(request, template, context, status=status)


@require_GET
@login_required
def import_reconciliation_view(request, slug):
    """Table 1 reconciliation: hits the libraries reported beside records imported."""
    access = review_access(request, slug)
    context = {
        "access": access,
        "review": access.review,
        "reconciliation": import_reconciliation(review=access.review),
    }
    if request.htmx:
        return render(request, "screening/imports/_reconciliation.html", context)
    return render(request, "screening/imports/reconciliation.html", context)


urlpatterns = [
    path("", import_list, name="import_list"),
    path("reconciliation/", import_reconciliation_view, name="import_reconciliation"),
    path("<int:batch_id>/", import_detail, name="import_detail"),
    path("<int:batch_id>/progress/", import_progress, name="import_progress"),
    path("<int:batch_id>/retry/", import_retry, name="import_retry"),
    path("<int:batch_id>/columns/", import_columns, name="import_columns"),
    path("<int:batch_id>/delete/", import_delete, name="import_delete"),
]
