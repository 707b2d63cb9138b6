"""Data extraction: fields per research question, drafts saved as you type, reconciliation,
synthesis counts that click through to their studies, and the CSV of the whole table."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ..access import Need, review_access
from ..forms.extraction import AssignForm, BulkAssignForm, FieldForm, FilterForm, ValueForm
from ..models import Study
from ..selectors.extraction import (
    extraction_cell,
    extraction_csv_rows,
    extraction_field_get,
    extraction_fields_grouped,
    extraction_overview,
    extraction_studies_filter,
    extraction_study_sheet,
    extraction_synthesis,
)
from ..services.extraction import (
    extraction_complete_set,
    extraction_contribution_flags_create,
    extraction_extractors_assign,
    extraction_extractors_assign_bulk,
    extraction_field_create,
    extraction_field_delete,
    extraction_reconcile,
    extraction_value_save,
)
from ..services.stale import StaleWrite
from .common import csv_response, form_errors, included_study_or_404
from .stale import stale_write_response


def _field_or_404(review, field_id):
    field = extraction_field_get(review=review, field_id=field_id)
    if field is None:
        raise Http404("No such field.")
    return field


@require_GET
@login_required
def extraction_home(request, slug):
    access = review_access(request, slug)
    review = access.review
    status = request.GET.get("status", "")
    context = {
        "access": access,
        "review": review,
        "status": status,
        "overview": extraction_overview(review=review, user=request.user, status=status),
        "bulk_form": BulkAssignForm(review=review),
    }
    if request.htmx and request.htmx.target == "extraction-studies":
        return render(request, "screening/extraction/_studies.html", context)
    return render(request, "screening/extraction/home.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def extraction_fields(request, slug):
    access = review_access(request, slug, Need.OWN if request.method == "POST" else Need.READ)
    review = access.review
    form = FieldForm(request.POST or None, review=review)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                field = extraction_field_create(
                    review=review,
                    actor=request.user,
                    label=data["label"],
                    kind=data["kind"],
                    research_question=data["research_question"],
                    choices=data["choices"],
                    help_text=data["help_text"],
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, f"Field “{field.label}” added.")
                return redirect("screening:extraction_fields", slug=slug)
        status = 422
    context = {
        "access": access,
        "review": review,
        "form": form,
        "groups": extraction_fields_grouped(review=review),
        "has_flags_missing": review.research_questions.exclude(
            extraction_fields__is_contribution=True
        ).exists(),
    }
    return render(request, "screening/extraction/fields.html", context, status=status)


@require_POST
@login_required
def extraction_contributions(request, slug):
    access = review_access(request, slug, Need.OWN)
    created = extraction_contribution_flags_create(review=access.review, actor=request.user)
    if created:
        messages.success(request, f"Added {len(created)} “contributes to” flag(s).")
    else:
        messages.info(request, "Every research question already has its flag.")
    return redirect("screening:extraction_fields", slug=slug)


@require_POST
@login_required
def extraction_field_remove(request, slug, field_id):
    access = review_access(request, slug, Need.OWN)
    field = _field_or_404(access.review, field_id)
    extraction_field_delete(review=access.review, field=field, actor=request.user)
    messages.success(request, f"Field “{field.label}” and its values removed.")
    return redirect("screening:extraction_fields", slug=slug)


@require_POST
@login_required
def extraction_assign_bulk(request, slug):
    access = review_access(request, slug, Need.OWN)
    form = BulkAssignForm(request.POST, review=access.review)
    if form.is_valid():
        count = extraction_extractors_assign_bulk(
            review=access.review,
            extractors=list(form.cleaned_data["assessors"]),
            per_study=form.cleaned_data["per_study"],
            actor=request.user,
        )
        messages.success(request, f"Extractors given to {count} studies.")
    else:
        messages.error(request, form_errors(form))
    return redirect("screening:extraction_home", slug=slug)


@require_POST
@login_required
def extraction_assign(request, slug, study_id):
    access = review_access(request, slug, Need.OWN)
    study = included_study_or_404(access.review, study_id)
    form = AssignForm(request.POST, review=access.review)
    if form.is_valid():
        extraction_extractors_assign(
            review=access.review,
            study=study,
            extractors=list(form.cleaned_data["assessors"]),
            actor=request.user,
        )
        messages.success(request, "Extractors saved.")
    else:
        messages.error(request, form_errors(form))
    return redirect("screening:extraction_study", slug=slug, study_id=study.pk)


def _sheet(request, access, study) -> dict:
    return extraction_study_sheet(
        review=access.review, study=study, user=request.user, is_owner=access.is_owner
    )


@require_GET
@login_required
def extraction_study(request, slug, study_id):
    access = review_access(request, slug)
    study = included_study_or_404(access.review, study_id)
    sheet = _sheet(request, access, study)
    context = {
        "access": access,
        "review": access.review,
        "study": study,
        "sheet": sheet,
        "assign_form": AssignForm(
            review=access.review,
            initial={"assessors": [a.extractor_id for a in sheet["row"].assignments]},
        ),
    }
    if request.htmx and request.htmx.target == "extraction-reconcile":
        return render(request, "screening/extraction/_reconcile.html", context)
    return render(request, "screening/extraction/study.html", context)


@require_POST
@login_required
def extraction_value(request, slug, study_id, field_id):
    """Autosave one field's draft value; answers with that field's save status.

    The status shows the value the server stored (or why it stored nothing: 400/422), and the
    field's new version travels out of band into the field's form for its next save.
    """
    access = review_access(request, slug, Need.WRITE)
    study = included_study_or_404(access.review, study_id)
    field = _field_or_404(access.review, field_id)
    form = ValueForm(request.POST, field=field)
    error, status = "", 200
    if not form.is_valid():
        error, status = form_errors(form), 400
    else:
        try:
            extraction_value_save(
                review=access.review,
                study=study,
                field=field,
                extractor=request.user,
                raw=form.cleaned_data["raw"],
                seen_version=form.cleaned_data["version"],
                force=form.cleaned_data["force"],
            )
        except StaleWrite as stale:
            return stale_write_response(request, stale, target=f"#mine-status-{field.pk}")
        except ValidationError as exc:
            error, status = f"{field.label}: {' '.join(exc.messages)}", 422
    if not request.htmx:
        # Without JavaScript the field's form posts natively: back to the sheet.
        if error:
            messages.error(request, error)
        return redirect("screening:extraction_study", slug=slug, study_id=study.pk)
    cell = extraction_cell(review=access.review, study=study, field=field, user=request.user)
    context = {"review": access.review, "study": study, "cell": cell, "error": error}
    return render(request, "screening/extraction/_value_response.html", context, status=status)


@require_POST
@login_required
def extraction_done(request, slug, study_id):
    access = review_access(request, slug, Need.WRITE)
    study = included_study_or_404(access.review, study_id)
    done = request.POST.get("done", "1") != "0"
    extraction_complete_set(review=access.review, study=study, extractor=request.user, done=done)
    messages.success(
        request, "Marked done: thank you." if done else "Reopened: your values are drafts again."
    )
    return redirect("screening:extraction_study", slug=slug, study_id=study.pk)


@require_POST
@login_required
def extraction_reconcile_value(request, slug, study_id, field_id):
    access = review_access(request, slug, Need.OWN)
    study = included_study_or_404(access.review, study_id)
    field = _field_or_404(access.review, field_id)
    form = ValueForm(request.POST, field=field)
    error, status = "", 200
    if not form.is_valid():
        error, status = form_errors(form), 400
    else:
        try:
            extraction_reconcile(
                review=access.review,
                study=study,
                field=field,
                actor=request.user,
                raw=form.cleaned_data["raw"],
                seen_version=form.cleaned_data["version"],
                force=form.cleaned_data["force"],
            )
        except StaleWrite as stale:
            return stale_write_response(request, stale, target=f"#reconcile-stale-{field.pk}")
        except ValidationError as exc:
            error, status = " ".join(exc.messages), 422
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("screening:extraction_study", slug=slug, study_id=study.pk)
    sheet = _sheet(request, access, study)
    context = {
        "access": access,
        "review": access.review,
        "study": study,
        "sheet": sheet,
        "cell": next(c for c in sheet["row"].cells if c.field.pk == field.pk),
        "error": error,
    }
    return render(request, "screening/extraction/_reconcile_row.html", context, status=status)


@require_GET
@login_required
def extraction_synthesis_view(request, slug):
    access = review_access(request, slug)
    context = {
        "access": access,
        "review": access.review,
        "synthesis": extraction_synthesis(review=access.review),
    }
    return render(request, "screening/extraction/synthesis.html", context)


@require_GET
@login_required
def extraction_studies(request, slug):
    """The studies behind one synthesis count."""
    access = review_access(request, slug)
    review = access.review
    form = FilterForm(request.GET)
    if not form.is_valid():
        return render(
            request,
            "screening/extraction/studies.html",
            {"access": access, "review": review, "error": form_errors(form), "studies": []},
            status=400,
        )
    data = form.cleaned_data
    field = None if data["field"] is None else _field_or_404(review, data["field"])
    error = ""
    studies: QuerySet[Study] | list[Study] = []
    try:
        studies = extraction_studies_filter(
            review=review,
            field=field,
            raw=data["value"],
            year=data["year"],
            no_year=data["no_year"],
        )
    except ValidationError as exc:
        error = " ".join(exc.messages)
    if field is not None:
        heading = f"{field.label}: {data['value']}"
    elif data["year"] is not None:
        heading = f"Published in {data['year']}"
    elif data["no_year"]:
        heading = "Year unknown"
    else:
        heading = "All included studies"
    context = {
        "access": access,
        "review": review,
        "studies": studies,
        "heading": heading,
        "error": error,
    }
    return render(
        request, "screening/extraction/studies.html", context, status=400 if error else 200
    )


@require_GET
@login_required
def extraction_csv(request, slug):
    """The whole extraction table: one row per study, one column per field, reconciled values."""
    access = review_access(request, slug)
    return csv_response(
        extraction_csv_rows(review=access.review), filename=f"{slug}-extraction.csv"
    )


urlpatterns = [
    path("", extraction_home, name="extraction_home"),
    path("fields/", extraction_fields, name="extraction_fields"),
    path("fields/contributions/", extraction_contributions, name="extraction_contributions"),
    path("fields/<int:field_id>/delete/", extraction_field_remove, name="extraction_field_delete"),
    path("assign/", extraction_assign_bulk, name="extraction_assign_bulk"),
    path("synthesis/", extraction_synthesis_view, name="extraction_synthesis"),
    path("studies/", extraction_studies, name="extraction_studies"),
    path("export.csv", extraction_csv, name="extraction_csv"),
    path("study/<int:study_id>/", extraction_study, name="extraction_study"),
    path("study/<int:study_id>/extractors/", extraction_assign, name="extraction_assign"),
    path("study/<int:study_id>/done/", extraction_done, name="extraction_done"),
    path("study/<int:study_id>/field/<int:field_id>/", extraction_value, name="extraction_value"),
    path(
        "study/<int:study_id>/field/<int:field_id>/reconcile/",
        extraction_reconcile_value,
        name="extraction_reconcile",
    ),
]
