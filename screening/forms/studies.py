"""Forms of the studies and study pages: filters, tags, bulk tagging and notes."""

from django import forms
from django.core.exceptions import ValidationError

from ..models import Source, Stage, Study, Tag
from ..models.screening import Verdict
from ..selectors.study_list import MY_VERDICT_NONE, SORTS, StudyFilters, tags_visible
from ..services.notes import NOTE_MAX_LENGTH
from . import form_field

SORT_LABELS = {
    "relevance": "Relevance (with a search), else import order",
    "id": "Import order",
    "title": "Title",
    "year_desc": "Newest first",
    "year_asc": "Oldest first",
    "priority": "Predicted relevance",
}


class StudyFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=300, label="Search")
    stage = forms.ModelChoiceField(
        queryset=Stage.objects.none(), required=False, to_field_name="key", empty_label="Any"
    )
    status = forms.ChoiceField(required=False)
    source = forms.ModelChoiceField(
        queryset=Source.objects.none(), required=False, empty_label="Any"
    )
    year = forms.IntegerField(required=False, min_value=1000, max_value=2999)
    tag = forms.ModelChoiceField(queryset=Tag.objects.none(), required=False, empty_label="Any")
    mine = forms.ChoiceField(required=False, label="My verdict")
    sort = forms.ChoiceField(required=False, choices=list(SORT_LABELS.items()))

    def __init__(self, *args, review, user, **kwargs):
        super().__init__(*args, **kwargs)
        form_field(self, "stage", forms.ModelChoiceField).queryset = Stage.objects.filter(
            review=review
        )
        form_field(self, "source", forms.ModelChoiceField).queryset = Source.objects.filter(
            review=review
        )
        form_field(self, "tag", forms.ModelChoiceField).queryset = tags_visible(
            review=review, user=user
        )
        form_field(self, "status", forms.ChoiceField).choices = [
            ("", "Any"),
            *Study.Outcome.choices,
        ]
        form_field(self, "mine", forms.ChoiceField).choices = [
            ("", "Any"),
            *Verdict.choices,
            (MY_VERDICT_NONE, "Not decided by me"),
        ]

    def filters(self) -> StudyFilters:
        data = self.cleaned_data
        return StudyFilters(
            search=data["q"],
            stage=data["stage"],
            status=data["status"],
            source_id=data["source"].pk if data["source"] else None,
            year=data["year"],
            tag=data["tag"],
            my_verdict=data["mine"],
            sort=data["sort"] if data["sort"] in SORTS else "relevance",
        )


class TagForm(forms.Form):
    name = forms.CharField(max_length=60)
    colour = forms.RegexField(regex=r"^#[0-9a-fA-F]{6}$", initial="#0d6efd", max_length=7)
    private = forms.BooleanField(required=False, label="Only for me")


class IdListField(forms.Field):
    """Several integer ids under one name (checkboxes); the service checks they belong."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[int]:
        values = value or []
        if not all(str(item).isdigit() for item in values):
            raise ValidationError("Study ids are whole numbers.")
        return [int(item) for item in values]


class BulkTagForm(forms.Form):
    tag = forms.IntegerField(min_value=1)
    study = IdListField(label="Studies")


class NoteForm(forms.Form):
    text = forms.CharField(max_length=NOTE_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 3}))
