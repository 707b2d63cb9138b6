"""The owner's PRISMA-S answers form: one text per checklist item, with the version seen."""

from django import forms

from ..domain.prisma_s import CHECKLIST
from ..services.prisma_s import ANSWER_MAX_LENGTH


class AnswersForm(forms.Form):
    version = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    force = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for entry in CHECKLIST:
            self.fields[f"item_{entry.number}"] = forms.CharField(
                required=False,
                max_length=ANSWER_MAX_LENGTH,
                label=f"{entry.number}. {entry.item}",
                help_text=entry.asks,
                widget=forms.Textarea(attrs={"rows": 2, "class": "form-control"}),
            )

    def answers(self) -> dict[int, str]:
        return {entry.number: self.cleaned_data[f"item_{entry.number}"] for entry in CHECKLIST}
