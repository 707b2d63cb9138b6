"""Prioritisation: the progress panel (recall curve, stopping rule), the owner's settings and
stopping a stage on the stopping rule (and undoing it).

`ranking_progress` is a fragment for the screening dashboard (hx-get) and a page of its own.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods

from ..access import Need, review_access
from ..forms.ranking import (
    AuditSampleForm,
    RankingSettingsForm,
    StageChoiceForm,
    StageStopForm,
)
from ..models import RankingSettings, Stage
from ..selectors.ranking import ranking_progress_get, ranking_stages
from ..services.ranking import (
    audit_sample_draw,
    ranking_retrain_request,
    ranking_settings_for,
    ranking_settings_update,
    stage_stop,
    stage_stop_undo,
)
from ..services.stale import StaleWrite
from .stale import stale_write_response


def _stage_or_error(review, data):
    form = StageChoiceForm(data, review=review)
    if form.is_valid():
        return form.cleaned_data["stage"], None
    return None, " ".join(str(e) for e in form.errors.get("stage", ["Unknown stage."]))


@require_GET
@login_required
def ranking_progress(request, slug):
    access = review_access(request, slug, Need.READ)
    stage, error = _stage_or_error(access.review, request.GET)
    if error:
        return render(
            request,
            "screening/ranking/_error.html",
            {"review": access.review, "error": error},
            status=400,
        )
    progress = ranking_progress_get(review=access.review, stage=stage, user=request.user)
    template = (
        "screening/ranking/_progress.html" if request.htmx else "screening/ranking/progress.html"
    )
    return render(
        request, template, {"review": access.review, "access": access, "progress": progress}
    )


@require_http_methods(["GET", "POST"])
@login_required
def ranking_settings(request, slug):
    access = review_access(request, slug, Need.OWN)
    review = access.review
    data = request.POST if request.method == "POST" else request.GET
    stage, error = _stage_or_error(review, data)
    if error:
        return render(
            request, "screening/ranking/_error.html", {"review": review, "error": error}, status=400
        )
    current: RankingSettings = ranking_settings_for(stage=stage)
    status = 200
    if request.method == "POST":
        form = RankingSettingsForm(request.POST)
        if form.is_valid():
            values = dict(form.cleaned_data)
            try:
                ranking_settings_update(
                    review=review,
                    stage=stage,
                    actor=request.user,
                    seen_version=values.pop("version"),
                    force=values.pop("force"),
                    **values,
                )
            except StaleWrite as error:
                return stale_write_response(request, error)
            if not request.htmx:
                messages.success(request, f"Prioritisation settings of {stage.name} saved.")
                url = reverse("screening:ranking_settings", args=[review.slug])
                return redirect(f"{url}?stage={stage.key}")
            stage.refresh_from_db()
            form = RankingSettingsForm(initial=_initial(stage, ranking_settings_for(stage=stage)))
            saved = True
        else:
            saved = False
            # htmx swaps only 2xx answers: the fragment with its errors comes back as 200.
            status = 200 if request.htmx else 400
    else:
        form = RankingSettingsForm(initial=_initial(stage, current))
        saved = False
    context = {
        "review": review,
        "access": access,
        "stage": stage,
        "stages": ranking_stages(review=review),
        "form": form,
        "saved": saved,
    }
    if request.htmx:
        template = "screening/ranking/_settings_form.html"
    else:
        template = "screening/ranking/settings.html"
    return render(request, template, context, status=status)


@require_http_methods(["POST"])
@login_required
def ranking_retrain(request, slug):
    """Owner: train the stage's model now (for example after an import brought new studies)."""
    access = review_access(request, slug, Need.OWN)
    review = access.review
    stage, error = _stage_or_error(review, request.POST)
    if error:
        return render(
            request, "screening/ranking/_error.html", {"review": review, "error": error}, status=400
        )
    outcome = ranking_retrain_request(review=review, stage=stage, actor=request.user)
    if request.htmx:
        progress = ranking_progress_get(review=review, stage=stage, user=request.user)
        return render(
            request,
            "screening/ranking/_progress.html",
            {"review": review, "access": access, "progress": progress, "retrain_outcome": outcome},
        )
    messages.info(request, outcome)
    url = reverse("screening:ranking_progress", args=[review.slug])
    return redirect(f"{url}?stage={stage.key}")


def _initial(stage: Stage, row: RankingSettings) -> dict:
    return {
        "queue_order": stage.queue_order,
        "retrain_every": row.retrain_every,
        "stop_after_irrelevant": row.stop_after_irrelevant,
        "recall_target": row.recall_target,
        "confidence": row.confidence,
        "version": row.version,
    }


def _form_refused(request, review, form):
    error = " ".join(e for errors in form.errors.values() for e in errors)
    return render(
        request, "screening/ranking/_error.html", {"review": review, "error": error}, status=400
    )


def _owner_action_answer(request, access, stage, outcome: str, *, status: int, kind: str):
    """The stage's progress panel with the action's outcome (`kind` names the template's slot),
    or, without htmx, a message and the progress page."""
    review = access.review
    if not request.htmx:
        (messages.success if status == 200 else messages.error)(request, outcome)
        url = reverse("screening:ranking_progress", args=[review.slug])
        return redirect(f"{url}?stage={stage.key}")
    progress = ranking_progress_get(review=review, stage=stage, user=request.user)
    context = {
        "review": review,
        "access": access,
        "progress": progress,
        f"{kind}_outcome": outcome,
        f"{kind}_failed": status != 200,
    }
    return render(request, "screening/ranking/_progress.html", context, status=status)


@require_http_methods(["POST"])
@login_required
def ranking_stop(request, slug):
    """Owner: stop the stage on the stopping rule, or undo the stop in force (`undo=1`)."""
    access = review_access(request, slug, Need.OWN)
    review = access.review
    form = StageStopForm(request.POST, review=review)
    if not form.is_valid():
        return _form_refused(request, review, form)
    stage = form.cleaned_data["stage"]
    undo = form.cleaned_data["undo"]
    status = 200
    try:
        if undo:
            stop = stage_stop_undo(
                review=review,
                stage=stage,
                actor=request.user,
                seen_stop=form.cleaned_data["version"],
                force=form.cleaned_data["force"],
            )
            outcome = f"Stop undone: {stop.excluded} studies are back in the {stage.name} queue."
        else:
            stop = stage_stop(review=review, stage=stage, actor=request.user)
            outcome = (
                f"{stage.name} stopped: {stop.excluded} unscreened studies are excluded by the "
                "stopping rule."
            )
    except StaleWrite as error:
        return stale_write_response(request, error)
    except ValidationError as error:
        outcome = " ".join(error.messages)
        status = 400
    return _owner_action_answer(request, access, stage, outcome, status=status, kind="stop")


@require_http_methods(["POST"])
@login_required
def ranking_audit_sample(request, slug):
    """Owner: draw the stage's random audit sample."""
    access = review_access(request, slug, Need.OWN)
    review = access.review
    form = AuditSampleForm(request.POST, review=review)
    if not form.is_valid():
        return _form_refused(request, review, form)
    stage = form.cleaned_data["stage"]
    status = 200
    try:
        sample = audit_sample_draw(
            review=review, stage=stage, actor=request.user, size=form.cleaned_data["size"]
        )
        outcome = (
            f"{sample.size} of {sample.population} unscreened studies drawn at random: they are "
            "next in the queue."
        )
    except ValidationError as error:
        outcome = " ".join(error.messages)
        status = 400
    return _owner_action_answer(request, access, stage, outcome, status=status, kind="sample")


urlpatterns = [
    path("", ranking_progress, name="ranking_progress"),
    path("settings/", ranking_settings, name="ranking_settings"),
    path("retrain/", ranking_retrain, name="ranking_retrain"),
    path("stop/", ranking_stop, name="ranking_stop"),
    path("audit-sample/", ranking_audit_sample, name="ranking_audit_sample"),
]
