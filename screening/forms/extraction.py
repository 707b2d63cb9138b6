"""Forms of the data extraction area."""

from django import forms
from django.http import QueryDict

from ..models import ExtractionField, ResearchQuestion
from . import StyledFormMixin, form_field
from .people import AssignPeopleForm, BulkAssignPeopleForm


class ReviewQuestionsForm(forms.Form):
    """Limits research questions to the review's (set before StyledFormMixin validates)."""

    def __init__(self, *args, review, **kwargs):
        super().__init__(*args, **kwargs)
        form_field(
            self, "research_question", forms.ModelChoiceField
        ).queryset = review.research_questions.all()


class FieldForm(StyledFormMixin, ReviewQuestionsForm):
    label = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=ExtractionField.Kind.choices)
    research_question = forms.ModelChoiceField(
        queryset=ResearchQuestion.objects.none(),
        required=False,
        empty_label="General (no research question)",
    )
    choices = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="For single and multiple choice: one choice per line.",
    )
    help_text = forms.CharField(label="Guidance for extractors", required=False, max_length=1000)


class AssignForm(AssignPeopleForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assessors"].label = "Extractors"


class BulkAssignForm(BulkAssignPeopleForm):
    noun = "extractors"
    per_study_initial = 1


class FilterForm(forms.Form):
    field = forms.IntegerField(required=False)
    value = forms.CharField(required=False, max_length=500)
    year = forms.IntegerField(required=False, min_value=0, max_value=9999)
    no_year = forms.BooleanField(required=False)


class ValueForm(forms.Form):
    """One field's value as its own form posts it, with the version the page showed.

    Only a multiple-choice field sends several `value`s; several for any other field mean the
    request mixed up fields, and nothing is saved rather than one of them at random.
    """

    version = forms.IntegerField(required=False, min_value=0)
    force = forms.BooleanField(required=False)

    def __init__(self, data: QueryDict, *, field: ExtractionField):
        super().__init__(data)
        self.posted = data
        self.extraction_field = field

    def clean(self):
        super().clean()
        data = self.cleaned_data
        raw = self.posted.getlist("value")
        if self.extraction_field.kind == ExtractionField.Kind.MULTI_CHOICE:
            data["raw"] = raw
        elif len(raw) > 1:
            raise forms.ValidationError(
                f"“{self.extraction_field.label}” takes one value but {len(raw)} were sent; "
                "nothing was saved. Reload the page and try again."
            )
        else:
            data["raw"] = raw[0] if raw else ""
        return data
