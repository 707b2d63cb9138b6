"""Imports: upload export files, watch them import, read each file's report, map unknown
columns, and reconcile Table 1 (hits reported) with what was imported."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from ..access import Need, review_access
from ..forms.imports import ColumnMapForm, UploadForm
from ..models import ImportBatch
from ..selectors.imports import (
    batch_delete_impact,
    batch_get,
    batch_list,
    batch_records_sample,
    import_reconciliation,
)
from ..services.imports import (
    batch_create,
    batch_delete,
    batch_mapping_set,
    batch_retry,
    impact_summary,
    source_resolve,
)
from ..services.queue import BROKER_DOWN_MESSAGE
from ..services.stale import StaleWrite
from ..uploads import upload_refusals
from .stale import stale_guard, stale_write_response

# Sent with the progress fragment of a finished import: the Table 1 reconciliation listens.
IMPORT_FINISHED_EVENT = "import-finished"


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


@require_http_methods(["GET", "POST"])
@login_required
def import_delete(request, slug, batch_id):
    """Delete an import. GET: the confirmation, saying what goes (records, the studies no other
    import holds, their decisions, notes...). POST: delete, with the figures' version the
    confirmation showed (a failed or waiting import needs none: it holds nothing)."""
    access = _import_access(request, slug)
    batch = _batch_or_404(access.review, batch_id)
    if request.method == "GET":
        if batch.status == ImportBatch.Status.DONE and not access.is_owner:
            raise PermissionDenied("Only the review's owners delete an import that holds records.")
        impact = batch_delete_impact(batch=batch)
        context = {"access": access, "review": access.review, "batch": batch, "impact": impact}
        return render(request, "screening/imports/delete.html", context)
    seen_version, force = stale_guard(request)
    try:
        impact = batch_delete(
            batch=batch, user=request.user, seen_version=seen_version, force=force
        )
    except StaleWrite as error:
        return stale_write_response(request, error)
    except ValidationError as error:
        return _delete_refused(request, access, batch, " ".join(error.messages))
    messages.success(
        request,
        f"The import of {batch.original_name} was deleted"
        + (f": {impact_summary(impact)} removed." if impact.records else "."),
    )
    url = reverse("screening:import_list", kwargs={"slug": access.review.slug})
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


def _delete_refused(request, access, batch, refusal):
    context = {"batch": batch, "review": access.review, "access": access, "refusal": refusal}
    if request.htmx:
        return render(request, "screening/imports/_report.html", context, status=400)
    messages.error(request, refusal)
    if not ImportBatch.objects.filter(pk=batch.pk).exists():
        return redirect("screening:import_list", slug=access.review.slug)
    return redirect("screening:import_detail", slug=access.review.slug, batch_id=batch.pk)


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
