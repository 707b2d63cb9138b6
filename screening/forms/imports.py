"""Forms of the imports pages: the upload (several files, a source, a search run, a format)
and the column mapping of a table whose columns match no known export."""

from django import forms
from django.core.exceptions import ValidationError

from ..models import SearchRun, Source
from ..services.imports import FORMAT_CHOICES, MAPPABLE_FIELDS
from . import MultipleFileField, SearchRunField, StyledFormMixin, form_field


class _ReviewChoicesForm(forms.Form):
    """Sets the review's choices before StyledFormMixin looks at the bound form's errors."""

    def __init__(self, *args, review, **kwargs):
        super().__init__(*args, **kwargs)
        form_field(self, "source", forms.ModelChoiceField).queryset = review.sources.all()
        form_field(self, "search_run", SearchRunField).queryset = review.search_runs.select_related(
            "search_string", "source"
        )


class UploadForm(StyledFormMixin, _ReviewChoicesForm):
    # The metaclass moves declared fields to base_fields: no clash with BaseForm.files.
    files = MultipleFileField(  # type: ignore[assignment]
        required=False,
        label="Export files",
        help_text="One or more files: RIS, BibTeX, CSV/TSV/XLSX, MEDLINE (.nbib), Web of Science "
        "plain text, EndNote XML or tagged text, ProQuest text. The format is detected from the "
        "content.",
    )
    source = forms.ModelChoiceField(
        queryset=Source.objects.none(),
        required=False,
        label="Source (digital library)",
        empty_label="—",
    )
    new_source = forms.CharField(
        max_length=120, required=False, label="…or a new source", help_text="e.g. Scopus"
    )
    search_run = SearchRunField(
        queryset=SearchRun.objects.none(),
        required=False,
        label="Search run (optional)",
        empty_label="Not tied to a search run",
    )
    format = forms.ChoiceField(
        required=False,
        choices=FORMAT_CHOICES,
        label="Format",
    )

    def clean(self):
        super().clean()
        data = self.cleaned_data
        source, new_source = data.get("source"), (data.get("new_source") or "").strip()
        if bool(source) == bool(new_source):
            raise ValidationError("Choose an existing source or name a new one (not both).")
        run = data.get("search_run")
        if run is not None and source is not None and run.source_id != source.pk:
            self.add_error("search_run", "That search run was made in another source.")
        return data


class ColumnMapForm(StyledFormMixin, forms.Form):
    def __init__(self, *args, columns: list[str], initial_map: dict, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", "— not in this file —")] + [(c, c) for c in columns]
        for name, label in MAPPABLE_FIELDS:
            self.fields[name] = forms.ChoiceField(
                choices=choices,
                required=name == "title",
                label=label,
                initial=initial_map.get(name, ""),
            )
