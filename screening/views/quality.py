"""Quality assessment: assessor assignment, the per-study answer sheet, consensus, Table 5."""

import csv
import io

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from ..access import Need, review_access
from ..forms import StyledFormMixin, form_field
from ..models import QualityCriterion, Review
from ..selectors.quality import (
    SORT_KEYS,
    quality_assessor_candidates,
    quality_overview,
    quality_scale_options,
    quality_study_get,
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
from .stale import stale_write_response

User = get_user_model()


def _people(review: Review):
    ids = quality_assessor_candidates(review=review).values("user_id")
    return User.objects.filter(pk__in=ids).order_by("username")


class PeopleField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return obj.get_username()


class PeopleForm(forms.Form):
    """Limits the people to the review's reviewers and owners.

    StyledFormMixin validates in its __init__, so it must come first in the bases: the
    queryset is then set before validation runs.
    """

    def __init__(self, *args, review: Review, **kwargs):
        super().__init__(*args, **kwargs)
        form_field(self, "assessors", forms.ModelChoiceField).queryset = _people(review)


class AssignForm(StyledFormMixin, PeopleForm):
    assessors = PeopleField(queryset=User.objects.none(), help_text="One or two people.")

    def clean_assessors(self):
        chosen = self.cleaned_data["assessors"]
        if len(chosen) > 2:
            raise forms.ValidationError("Choose one or two people.")
        return chosen


class BulkAssignForm(StyledFormMixin, PeopleForm):
    assessors = PeopleField(
        queryset=User.objects.none(), help_text="Studies without assessors are shared among them."
    )
    per_study = forms.TypedChoiceField(
        label="Assessors per study", choices=[(1, "1"), (2, "2")], coerce=int, initial=2
    )

    def clean(self):
        super().clean()
        data = self.cleaned_data
        if (
            "assessors" in data
            and "per_study" in data
            and len(data["assessors"]) < data["per_study"]
        ):
            raise forms.ValidationError(
                f"Choose at least {data['per_study']} people to give each study "
                f"{data['per_study']} assessors."
            )
        return data


class SettingsForm(StyledFormMixin, forms.Form):
    scale = forms.ChoiceField(label="Answer scale", choices=Review.QualityScale.choices)
    threshold = forms.DecimalField(
        label="Exclusion threshold",
        required=False,
        min_value=0,
        max_digits=5,
        decimal_places=2,
        help_text="Studies whose total is below it are excluded. Leave empty to switch it off.",
    )


class AnswerForm(forms.Form):
    criterion = forms.ModelChoiceField(queryset=QualityCriterion.objects.none())
    answer = forms.ChoiceField()
    justification = forms.CharField(required=False, max_length=4000)
    version = forms.IntegerField(required=False, min_value=0)
    force = forms.BooleanField(required=False)

    def __init__(self, *args, review: Review, **kwargs):
        super().__init__(*args, **kwargs)
        form_field(
            self, "criterion", forms.ModelChoiceField
        ).queryset = review.quality_criteria.all()
        self.fields["criterion"].error_messages["invalid_choice"] = (
            "This criterion does not belong to the review."
        )
        form_field(self, "answer", forms.ChoiceField).choices = [
            (o.key, o.label) for o in quality_scale_options(review=review)
        ]
        self.fields["answer"].error_messages["invalid_choice"] = (
            "Choose one of the answers of this review's scale: "
            + ", ".join(f"{o.label} ({o.key})" for o in quality_scale_options(review=review))
            + "."
        )


class ConsensusForm(AnswerForm):
    # None removes the inherited field (declarative forms); the stubs only allow a Field.
    justification = None  # type: ignore[assignment]
    note = forms.CharField(required=False, max_length=4000)
    action = forms.ChoiceField(choices=[("decide", "decide"), ("reopen", "reopen")], required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.data.get("action") == "reopen":
            self.fields["answer"].required = False


def _errors(form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


def _study_or_404(review, study_id):
    study = quality_study_get(review=review, study_id=study_id)
    if study is None:
        raise Http404("No such included study.")
    return study


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
        "people": _people(review),
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
        messages.error(request, _errors(form))
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
        messages.error(request, _errors(form))
    return redirect("screening:quality_home", slug=slug)


@require_GET
@login_required
def quality_study(request, slug, study_id):
    access = review_access(request, slug)
    study = _study_or_404(access.review, study_id)
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
    study = _study_or_404(access.review, study_id)
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
        messages.error(request, _errors(form))
    return redirect("screening:quality_study", slug=slug, study_id=study.pk)


@require_POST
@login_required
def quality_answer(request, slug, study_id):
    """Autosave one answer; answers with the criterion's row and the refreshed summary."""
    access = review_access(request, slug, Need.WRITE)
    study = _study_or_404(access.review, study_id)
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
        error = _errors(form)
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
    study = _study_or_404(access.review, study_id)
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
    study = _study_or_404(access.review, study_id)
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
        error = _errors(form)
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


def csv_response(rows, *, filename: str) -> HttpResponse:
    """CSV a spreadsheet opens right: UTF-8 with a byte order mark, quoted where needed."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    response = HttpResponse("\ufeff" + buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


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
