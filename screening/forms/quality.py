"""Forms of the quality assessment area."""

from django import forms

from ..models import QualityCriterion, Review
from ..selectors.quality import quality_scale_options
from . import StyledFormMixin, form_field
from .people import AssignPeopleForm, BulkAssignPeopleForm


class AssignForm(AssignPeopleForm):
    pass


class BulkAssignForm(BulkAssignPeopleForm):
    noun = "assessors"


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
