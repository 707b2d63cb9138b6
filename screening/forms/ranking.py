"""Prioritisation forms: which stage, the owner's settings, stopping a stage, the audit sample."""

from django import forms

from ..models import Stage
from . import StyledFormMixin


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


class StageStopForm(StageChoiceForm):
    undo = forms.BooleanField(required=False)
    version = forms.IntegerField(required=False, min_value=0)  # undo: the stop the page showed
    force = forms.BooleanField(required=False)


class AuditSampleForm(StageChoiceForm):
    size = forms.IntegerField(min_value=1, max_value=100_000)


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
    recall_target = forms.FloatField(
        label="Stopping rule: recall target",
        min_value=0.5,
        max_value=0.999,
        help_text="The share of relevant studies the team wants to find (BUSCAR, Callaghan and "
        "Mueller-Hansen 2020). 0.95 is the usual choice.",
        widget=forms.NumberInput(attrs={"step": "0.001"}),
    )
    confidence = forms.FloatField(
        label="Stopping rule: confidence",
        min_value=0.5,
        max_value=0.999,
        help_text="How sure the test must be that the target is reached before the stage may "
        "stop (0.95: a 5 % risk of stopping below the target).",
        widget=forms.NumberInput(attrs={"step": "0.001"}),
    )
    version = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    force = forms.BooleanField(required=False, widget=forms.HiddenInput)
