"""Prioritisation: the progress panel (recall curve, stopping hint) and the owner's settings.

`ranking_progress` is a fragment for the screening dashboard (hx-get) and a page of its own.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods

from ..access import Need, review_access
from ..forms import StyledFormMixin
from ..models import RankingSettings, Stage
from ..selectors.ranking import ranking_progress_get, ranking_stages
from ..services.ranking import (
    ranking_retrain_request,
    ranking_settings_for,
    ranking_settings_update,
)


class StageChoiceForm(forms.Form):
    stage = forms.SlugField(required=False, max_length=40)

    def __init__(self, *args, review, **kwargs):
        super().__init__(*args, **kwargs)
        self.review = review

    def clean_stage(self):
        key = self.cleaned_data["stage"]
        stages = self.review.stages.all()
        stage = stages.filter(key=key).first() if key else stages.filter(is_entry=True).first()
        if stage is None:
            raise forms.ValidationError(f"This review has no stage {key!r}.")
        return stage


class RankingSettingsForm(StyledFormMixin, forms.Form):
    queue_order = forms.ChoiceField(
        label="Queue order",
        choices=Stage.QueueOrder.choices,
        help_text="Prioritised takes effect once the stage has one include and one exclude; "
        "until then the queue is random.",
    )
    retrain_every = forms.IntegerField(
        label="Retrain after this many new decisions",
        min_value=1,
        max_value=500,
    )
    stop_after_irrelevant = forms.IntegerField(
        label="Stopping hint: consecutive irrelevant decisions",
        min_value=0,
        max_value=100_000,
        help_text="Show a hint to consider stopping after this many irrelevant decisions in a "
        "row (0 = no hint). Nothing is excluded automatically.",
    )


def _stage_or_error(review, data):
    form = StageChoiceForm(data, review=review)
    if form.is_valid():
        return form.cleaned_data["stage"], None
    return None, " ".join(form.errors.get("stage", ["Unknown stage."]))


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
            ranking_settings_update(
                review=review, stage=stage, actor=request.user, **form.cleaned_data
            )
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
    }


urlpatterns = [
    path("", ranking_progress, name="ranking_progress"),
    path("settings/", ranking_settings, name="ranking_settings"),
    path("retrain/", ranking_retrain, name="ranking_retrain"),
]
