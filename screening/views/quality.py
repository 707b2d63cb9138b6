"""Quality assessment: assessor assignment, the per-study answer sheet, consensus, Table 5."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from ..access import Need, review_access
from ..forms.people import review_people
from ..forms.quality import AnswerForm, AssignForm, BulkAssignForm, ConsensusForm, SettingsForm
from ..selectors.quality import (
    SORT_KEYS,
    quality_overview,
    quality_scale_options,
    quality_study_neighbours,
    quality_study_sheet,
    quality_table5,
    quality_table5_csv_rows,
)
from ..services.quality import (
    quality_answer_record,
    quality_assessors_assign,
    quality_assessors_assign_bulk,
    quality_complete_set,
    quality_consensus_record,
    quality_consensus_reopen,
    quality_settings_update,
)
from ..services.stale import StaleWrite
from .common import csv_response, form_errors, included_study_or_404
from .stale import stale_write_response


def _sheet_context(request, access, study, **extra) -> dict:
    sheet = quality_study_sheet(review=access.review, study=study, user=request.user)
    my_assignment = sheet.assignment_of(request.user.pk)
    return {
        "access": access,
        "review": access.review,
        "study": study,
        "sheet": sheet,
        "assigned": my_assignment is not None,
        "my_assignment": my_assignment,
        "options": quality_scale_options(review=access.review),
        "total_label": None if sheet.total is None else f"{sheet.total.normalize():f}",
        **extra,
    }


@require_GET
@login_required
def quality_home(request, slug):
    access = review_access(request, slug)
    review = access.review
    status = request.GET.get("status", "")
    overview = quality_overview(review=review, user=request.user, status=status)
    context = {
        "access": access,
        "review": review,
        "overview": overview,
        "status": status,
        "criteria": review.quality_criteria.all(),
        "bulk_form": BulkAssignForm(review=review),
        "settings_form": SettingsForm(
            initial={"scale": review.quality_scale, "threshold": review.quality_threshold}
        ),
        "people": review_people(review),
    }
    if request.htmx and request.htmx.target == "quality-studies":
        return render(request, "screening/quality/_studies.html", context)
    return render(request, "screening/quality/home.html", context)


@require_POST
@login_required
def quality_settings(request, slug):
    access = review_access(request, slug, Need.OWN)
    form = SettingsForm(request.POST)
    if form.is_valid():
        try:
            quality_settings_update(
                review=access.review,
                actor=request.user,
                scale=form.cleaned_data["scale"],
                threshold=form.cleaned_data["threshold"],
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, "Quality settings saved.")
    else:
        messages.error(request, form_errors(form))
    return redirect("screening:quality_home", slug=slug)


@require_POST
@login_required
def quality_assign_bulk(request, slug):
    access = review_access(request, slug, Need.OWN)
    form = BulkAssignForm(request.POST, review=access.review)
    if form.is_valid():
        count = quality_assessors_assign_bulk(
            review=access.review,
            assessors=list(form.cleaned_data["assessors"]),
            per_study=form.cleaned_data["per_study"],
            actor=request.user,
        )
        messages.success(request, f"Assessors given to {count} studies.")
    else:
        messages.error(request, form_errors(form))
    return redirect("screening:quality_home", slug=slug)


@require_GET
@login_required
def quality_study(request, slug, study_id):
    access = review_access(request, slug)
    study = included_study_or_404(access.review, study_id)
    context = _sheet_context(
        request,
        access,
        study,
        neighbours=quality_study_neighbours(review=access.review, study=study, user=request.user),
        assign_form=AssignForm(
            review=access.review,
            initial={"assessors": [a.assessor_id for a in study.quality_assignments.all()]},
        ),
    )
    if request.htmx and request.htmx.target == "quality-summary":
        return render(request, "screening/quality/_summary.html", context)
    return render(request, "screening/quality/study.html", context)


@require_POST
@login_required
def quality_assign(request, slug, study_id):
    access = review_access(request, slug, Need.OWN)
    study = included_study_or_404(access.review, study_id)
    form = AssignForm(request.POST, review=access.review)
    if form.is_valid():
        try:
            quality_assessors_assign(
                review=access.review,
                study=study,
                assessors=list(form.cleaned_data["assessors"]),
                actor=request.user,
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, "Assessors saved.")
    else:
        messages.error(request, form_errors(form))
    return redirect("screening:quality_study", slug=slug, study_id=study.pk)


@require_POST
@login_required
def quality_answer(request, slug, study_id):
    """Autosave one answer; answers with the criterion's row and the refreshed summary."""
    access = review_access(request, slug, Need.WRITE)
    study = included_study_or_404(access.review, study_id)
    form = AnswerForm(request.POST, review=access.review)
    error = ""
    if form.is_valid():
        data = form.cleaned_data
        try:
            quality_answer_record(
                review=access.review,
                study=study,
                criterion=data["criterion"],
                assessor=request.user,
                answer=data["answer"],
                justification=data["justification"],
                seen_version=data["version"],
                force=data["force"],
            )
        except StaleWrite as stale:
            response = stale_write_response(
                request, stale, target=f"#qc-stale-{data['criterion'].pk}"
            )
            # The justification's autosave selects its status line from the answer; the
            # stale message must come through whole.
            response["HX-Reselect"] = "[data-stale-write]"
            return response
        except ValidationError as exc:
            error = " ".join(exc.messages)
    else:
        error = form_errors(form)
    context = _sheet_context(request, access, study, error=error)
    # Valid fields stay in cleaned_data even when another field is invalid.
    criterion = form.cleaned_data.get("criterion")
    cells = context["sheet"].cells
    context["cell"] = next((c for c in cells if criterion and c.criterion.pk == criterion.pk), None)
    context["index"] = cells.index(context["cell"]) + 1 if context["cell"] else 0
    status = 422 if error else 200
    if not request.htmx:
        # Without JavaScript (or before htmx has started) the form posts natively: back to
        # the sheet, which shows the saved answer, with any refusal as a message.
        if error:
            messages.error(request, error)
        return redirect("screening:quality_study", slug=access.review.slug, study_id=study.pk)
    if context["cell"] is None:
        return render(request, "screening/quality/_error.html", context, status=422)
    return render(request, "screening/quality/_answer_response.html", context, status=status)


@require_POST
@login_required
def quality_done(request, slug, study_id):
    """Mark the assessor's work on a study done (or reopen it before the answers are revealed)."""
    access = review_access(request, slug, Need.WRITE)
    study = included_study_or_404(access.review, study_id)
    done = request.POST.get("done", "1") != "0"
    try:
        quality_complete_set(review=access.review, study=study, assessor=request.user, done=done)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            "Marked done: the answers are revealed once every assessor has marked the study done."
            if done
            else "Reopened: your answers stay hidden from the other assessor.",
        )
    return redirect("screening:quality_study", slug=slug, study_id=study.pk)


@require_POST
@login_required
def quality_consensus(request, slug, study_id):
    access = review_access(request, slug, Need.OWN)
    study = included_study_or_404(access.review, study_id)
    form = ConsensusForm(request.POST, review=access.review)
    error = ""
    if form.is_valid():
        data = form.cleaned_data
        decision = {
            "review": access.review,
            "study": study,
            "criterion": data["criterion"],
            "actor": request.user,
            "seen_version": data["version"],
            "force": data["force"],
        }
        try:
            if data["action"] == "reopen":
                quality_consensus_reopen(**decision)
            else:
                quality_consensus_record(**decision, answer=data["answer"], note=data["note"])
        except StaleWrite as stale:
            return stale_write_response(request, stale, target="#quality-consensus-stale")
        except ValidationError as exc:
            error = " ".join(exc.messages)
    else:
        error = form_errors(form)
    context = _sheet_context(request, access, study, consensus_error=error)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("screening:quality_study", slug=slug, study_id=study.pk)
    return render(request, "screening/quality/_summary.html", context, status=422 if error else 200)


def _sort_params(request, review) -> tuple[str, bool]:
    sort = request.GET.get("sort", "study")
    codes = set(review.quality_criteria.values_list("code", flat=True))
    if sort not in SORT_KEYS and sort not in codes:
        sort = "study"
    return sort, request.GET.get("dir") == "desc"


@require_GET
@login_required
def quality_table(request, slug):
    access = review_access(request, slug)
    sort, descending = _sort_params(request, access.review)
    table = quality_table5(review=access.review, sort=sort, descending=descending)
    context = {"access": access, "review": access.review, "table": table}
    if request.htmx and request.htmx.target == "table5":
        return render(request, "screening/quality/_table5.html", context)
    return render(request, "screening/quality/table.html", context)


@require_GET
@login_required
def quality_table_csv(request, slug):
    """Table 5 for a spreadsheet: UTF-8 with BOM, one row per study, consensus answers."""
    access = review_access(request, slug)
    sort, descending = _sort_params(request, access.review)
    rows = quality_table5_csv_rows(review=access.review, sort=sort, descending=descending)
    return csv_response(rows, filename=f"{slug}-quality-table5.csv")


urlpatterns = [
    path("", quality_home, name="quality_home"),
    path("settings/", quality_settings, name="quality_settings"),
    path("assign/", quality_assign_bulk, name="quality_assign_bulk"),
    path("table/", quality_table, name="quality_table"),
    path("table.csv", quality_table_csv, name="quality_table_csv"),
    path("study/<int:study_id>/", quality_study, name="quality_study"),
    path("study/<int:study_id>/assessors/", quality_assign, name="quality_assign"),
    path("study/<int:study_id>/answer/", quality_answer, name="quality_answer"),
    path("study/<int:study_id>/done/", quality_done, name="quality_done"),
    path("study/<int:study_id>/consensus/", quality_consensus, name="quality_consensus"),
]
