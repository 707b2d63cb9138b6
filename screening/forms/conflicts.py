"""Forms of the conflicts queue."""

from django import forms

from ..models import Decision
from . import form_field


class ResolveForm(forms.Form):
    verdict = forms.ChoiceField(
        choices=Decision.Verdict.choices, error_messages={"required": "Choose the outcome."}
    )
    reasons = forms.TypedMultipleChoiceField(coerce=int, required=False)
    primary_reason = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    # Required by the service only when the outcome overrides every reviewer.
    note = forms.CharField(max_length=4000, required=False, label="Note")
    # The version of the stage's outcome the form showed (0: unresolved), and "apply anyway".
    version = forms.IntegerField(min_value=0, required=False)
    force = forms.BooleanField(required=False)
    # The stage the conflict was shown in: the study may have moved on since.
    stage = forms.SlugField(required=False)

    def __init__(self, *args, reasons=(), **kwargs):
        super().__init__(*args, **kwargs)
        form_field(self, "reasons", forms.ChoiceField).choices = [(c.pk, c.code) for c in reasons]
        form_field(self, "primary_reason", forms.ChoiceField).choices = [("", "")] + [
            (c.pk, c.code) for c in reasons
        ]

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("verdict") != Decision.Verdict.EXCLUDE:
            cleaned["reasons"] = []
            cleaned["primary_reason"] = None
        elif cleaned.get("primary_reason") is not None:
            # The reason that counts is one of the outcome's reasons even if left unticked.
            cleaned["reasons"] = sorted({*cleaned.get("reasons", []), cleaned["primary_reason"]})
        return cleaned


class AdjudicatorForm(forms.Form):
    user = forms.IntegerField()
    action = forms.ChoiceField(choices=[("add", "add"), ("remove", "remove")])
