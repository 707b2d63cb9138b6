"""The screening page's forms: a decision, a skip, an undo (each carries the version it saw)."""

from django import forms

from ..models import Decision
from . import form_field


class VersionedForm(forms.Form):
    """The version of the reviewer's decision the form showed, and "apply mine anyway"."""

    version = forms.IntegerField(min_value=0, required=False)
    force = forms.BooleanField(required=False)


class DecisionForm(VersionedForm):
    study = forms.IntegerField(widget=forms.HiddenInput)
    verdict = forms.ChoiceField(choices=Decision.Verdict.choices)
    reasons = forms.TypedMultipleChoiceField(coerce=int, required=False)
    note = forms.CharField(max_length=4000, required=False)

    def __init__(self, *args, reasons=(), **kwargs):
        super().__init__(*args, **kwargs)
        form_field(self, "reasons", forms.ChoiceField).choices = [(c.pk, c.code) for c in reasons]

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        # A reason ticked before choosing include/uncertain is dropped, not an error.
        if cleaned.get("verdict") != Decision.Verdict.EXCLUDE:
            cleaned["reasons"] = []
        return cleaned


class StudyForm(forms.Form):
    study = forms.IntegerField()


class UndoForm(StudyForm, VersionedForm):
    pass
