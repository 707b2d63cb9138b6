"""The screening page: one study at a time, keyboard first, the next study swapped in by htmx."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from ..access import Need, review_access
from ..forms.screening import DecisionForm, StudyForm, UndoForm
from ..models import Criterion, Decision, Stage, Study
from ..selectors.screening import (
    decisions_visible,
    highlight_segments,
    highlight_terms,
    screening_panel_state,
    stage_overview,
    stage_with_reasons,
    study_get,
)
from ..services.screening import (
    decision_record,
    decision_undo,
    study_claim_next,
    study_skip,
)
from ..services.stale import StaleWrite
from .stale import stale_write_response

PANEL = "screening/screening/_panel.html"
PAGE = "screening/screening/stage.html"


# Where a stale decision's 409 message goes: the panel's message slot (see _panel.html).
STALE_TARGET = "#screen-stale"


def _stage_or_404(review, stage_key) -> tuple[Stage, list[Criterion]]:
    """The stage and the exclusion reasons it offers (the panel shows them), in one read."""
    found = stage_with_reasons(review=review, key=stage_key)
    if found is None:
        raise Http404("No such stage.")
    return found


def _panel_context(*, access, stage, reasons, study, user, message="", error="", form=None) -> dict:
    review = access.review
    include = highlight_terms(review.highlight_include_terms)
    exclude = highlight_terms(review.highlight_exclude_terms)
    state = screening_panel_state(review=review, stage=stage, reviewer=user, study=study)
    selected = set()
    if form is not None and form.is_bound:
        selected = {int(v) for v in form.data.getlist("reasons") if str(v).isdigit()}
    return {
        "access": access,
        "review": review,
        "stage": stage,
        "study": study,
        "title_segments": highlight_segments(study.title, include=include, exclude=exclude)
        if study
        else [],
        "abstract_segments": highlight_segments(study.abstract, include=include, exclude=exclude)
        if study and stage.shows_abstract
        else [],
        "reasons": [
            {"number": index, "criterion": c, "checked": c.pk in selected}
            for index, c in enumerate(reasons, start=1)
        ],
        "progress": state.progress,
        "undoable": state.undoable,
        "study_version": state.study_version,
        "message": message,
        "error": error,
        "note": form.data.get("note", "") if form is not None and form.is_bound else "",
    }


def _study_or_404(review, pk) -> Study:
    study = study_get(review=review, pk=pk)
    if study is None:
        raise Http404("No such study.")
    return study


def _respond(request, context, status=200):
    template = PANEL if request.htmx else PAGE
    return render(request, template, context, status=status)


@require_GET
@login_required
def screening_home(request, slug):
    access = review_access(request, slug)
    context = {
        "access": access,
        "review": access.review,
        "stages": stage_overview(review=access.review, user=request.user),
    }
    return render(request, "screening/screening/home.html", context)


@require_GET
@login_required
def screening_stage(request, slug, stage_key):
    access = review_access(request, slug, Need.WRITE)
    stage, reasons = _stage_or_404(access.review, stage_key)
    study = study_claim_next(review=access.review, stage=stage, reviewer=request.user)
    return _respond(
        request,
        _panel_context(access=access, stage=stage, reasons=reasons, study=study, user=request.user),
    )


@require_POST
@login_required
def screening_decide(request, slug, stage_key):
    access = review_access(request, slug, Need.WRITE)
    review = access.review
    stage, reasons = _stage_or_404(review, stage_key)
    form = DecisionForm(request.POST, reasons=reasons)
    study = study_id = None
    if form.is_valid():
        study_id = form.cleaned_data["study"]
        try:
            # By id: the service reads the study once, locked (one round trip less).
            decision_record(
                review=review,
                study=study_id,
                stage=stage,
                reviewer=request.user,
                verdict=form.cleaned_data["verdict"],
                reasons=form.cleaned_data["reasons"],
                offered=reasons,
                note=form.cleaned_data["note"],
                seen_version=form.cleaned_data["version"],
                force=form.cleaned_data["force"],
            )
        except Study.DoesNotExist:
            raise Http404("No such study.") from None
        except StaleWrite as stale:
            return stale_write_response(request, stale, target=STALE_TARGET)
        except ValidationError as error:
            error_text = " ".join(error.messages)
        else:
            if not request.htmx:
                return redirect("screening:screening_stage", slug=review.slug, stage_key=stage.key)
            following = study_claim_next(review=review, stage=stage, reviewer=request.user)
            verdict = Decision.Verdict(form.cleaned_data["verdict"]).label
            return _respond(
                request,
                _panel_context(
                    access=access,
                    stage=stage,
                    study=following,
                    user=request.user,
                    message=f"Recorded: {verdict.lower()}. Press Z to undo.",
                    reasons=reasons,
                ),
            )
    else:
        error_text = "Choose include, uncertain or exclude for this study."
        study_id = form.cleaned_data.get("study") if hasattr(form, "cleaned_data") else None
    if study_id:
        study = study_get(review=review, pk=study_id)
    if study is None or study.current_stage_id != stage.pk:
        study = study_claim_next(review=review, stage=stage, reviewer=request.user)
    context = _panel_context(
        access=access,
        stage=stage,
        study=study,
        user=request.user,
        error=error_text,
        form=form,
        reasons=reasons,
    )
    return _respond(request, context, status=422)


@require_POST
@login_required
def screening_skip(request, slug, stage_key):
    access = review_access(request, slug, Need.WRITE)
    review = access.review
    stage, reasons = _stage_or_404(review, stage_key)
    form = StudyForm(request.POST)
    if not form.is_valid():
        study = study_claim_next(review=review, stage=stage, reviewer=request.user)
        context = _panel_context(
            access=access,
            stage=stage,
            reasons=reasons,
            study=study,
            user=request.user,
            error="No study to skip.",
        )
        return _respond(request, context, status=422)
    study = _study_or_404(review, form.cleaned_data["study"])
    study_skip(review=review, stage=stage, study=study, reviewer=request.user)
    if not request.htmx:
        return redirect("screening:screening_stage", slug=review.slug, stage_key=stage.key)
    following = study_claim_next(review=review, stage=stage, reviewer=request.user)
    message = "Skipped: it comes back when the rest is done." if following else ""
    return _respond(
        request,
        _panel_context(
            access=access,
            stage=stage,
            reasons=reasons,
            study=following,
            user=request.user,
            message=message,
        ),
    )


@require_POST
@login_required
def screening_undo(request, slug, stage_key):
    access = review_access(request, slug, Need.WRITE)
    review = access.review
    stage, reasons = _stage_or_404(review, stage_key)
    form = UndoForm(request.POST)
    error = message = ""
    undone = None
    study: Study | None = None
    if not form.is_valid():
        error = "Nothing to undo in this stage."
    else:
        study = _study_or_404(review, form.cleaned_data["study"])
        try:
            undone = decision_undo(
                review=review,
                stage=stage,
                reviewer=request.user,
                study=study,
                seen_version=form.cleaned_data["version"],
                force=form.cleaned_data["force"],
            )
        except StaleWrite as stale:
            return stale_write_response(request, stale, target=STALE_TARGET)
        except ValidationError as exc:
            error = " ".join(exc.messages)
    if undone is not None:
        label = Decision.Verdict(undone.verdict).label.lower()
        message = f"Undone: your {label} on this study. Decide again."
        study = undone.study
    else:
        study = study_claim_next(review=review, stage=stage, reviewer=request.user)
    if not request.htmx and not error:
        return redirect("screening:screening_stage", slug=review.slug, stage_key=stage.key)
    context = _panel_context(
        access=access,
        stage=stage,
        reasons=reasons,
        study=study,
        user=request.user,
        message=message,
        error=error,
    )
    return _respond(request, context, status=422 if error else 200)


@require_GET
@login_required
def screening_study(request, slug, study_id):
    access = review_access(request, slug)
    review = access.review
    study = get_object_or_404(
        Study.objects.select_related("current_stage"), pk=study_id, review=review
    )
    # While a study waits at a title-only stage its abstract stays hidden, as on the screen.
    hide_abstract = (
        study.current_stage is not None
        and study.current_stage.kind == Stage.Kind.TITLE
        and study.outcome == Study.Outcome.SCREENING
    )
    context = {
        "access": access,
        "review": review,
        "study": study,
        "hide_abstract": hide_abstract,
        "decisions": decisions_visible(review=review, study=study, user=request.user),
        "resolutions": study.resolutions.select_related(
            "stage", "decided_by", "primary_reason"
        ).prefetch_related("reasons"),
    }
    template = (
        "screening/screening/_study.html" if request.htmx else "screening/screening/study.html"
    )
    return render(request, template, context)


urlpatterns = [
    path("", screening_home, name="screening_home"),
    path("studies/<int:study_id>/", screening_study, name="screening_study"),
    path("<slug:stage_key>/", screening_stage, name="screening_stage"),
    path("<slug:stage_key>/decide/", screening_decide, name="screening_decide"),
    path("<slug:stage_key>/skip/", screening_skip, name="screening_skip"),
    path("<slug:stage_key>/undo/", screening_undo, name="screening_undo"),
]
