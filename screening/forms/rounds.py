"""Forms of the search rounds: opening a round, and a round's export upload."""

from django import forms

from ..models import SearchRun
from ..services.imports import FORMAT_CHOICES
from ..services.rounds import RoundRun
from . import MultipleFileField, SearchRunField, StyledFormMixin, form_field


class _RoundPairsForm(forms.Form):
    """Adds a hits field per string and source before StyledFormMixin reads the errors."""

    def __init__(self, *args, pairs, **kwargs):
        super().__init__(*args, **kwargs)
        self.pairs = pairs
        for string, source in pairs:
            self.fields[self.field_name(string, source)] = forms.IntegerField(
                min_value=0,
                required=False,
                label=f"{source.name}: {string.text[:120]}",
            )

    @staticmethod
    def field_name(string, source) -> str:
        return f"hits_{string.pk}_{source.pk}"


class RoundOpenForm(StyledFormMixin, _RoundPairsForm):
    """The new round's date and, per search string and source, the hits the library reported
    (left empty: not re-run in this round)."""

    run_on = forms.DateField(
        label="Searches run on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The date the searches were re-run in the libraries.",
    )
    note = forms.CharField(max_length=300, required=False, label="Note (optional)")

    def rows(self):
        return [self[self.field_name(string, source)] for string, source in self.pairs]

    def runs(self) -> list[RoundRun]:
        return [
            RoundRun(search_string=string, source=source, hits_reported=hits)
            for string, source in self.pairs
            if (hits := self.cleaned_data.get(self.field_name(string, source))) is not None
        ]


class _RoundRunsForm(forms.Form):
    """Limits the runs to the round's before StyledFormMixin reads the errors."""

    search_run = SearchRunField(
        dated=False,
        queryset=SearchRun.objects.none(),
        label="Search run of this round",
        empty_label=None,
        error_messages={
            "invalid_choice": "Choose one of this round's search runs: the file must come "
            "from a source and search string the round re-ran."
        },
    )

    def __init__(self, *args, search_round, **kwargs):
        super().__init__(*args, **kwargs)
        form_field(self, "search_run", SearchRunField).queryset = search_round.runs.select_related(
            "search_string", "source"
        )


class RoundImportForm(StyledFormMixin, _RoundRunsForm):
    # The metaclass moves declared fields to base_fields: no clash with BaseForm.files.
    files = MultipleFileField(  # type: ignore[assignment]
        label="Export files",
        help_text="The files the libraries gave for this round's searches; the format is "
        "detected from the content.",
    )
    format = forms.ChoiceField(
        required=False,
        choices=FORMAT_CHOICES,
        label="Format",
    )
