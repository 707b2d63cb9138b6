"""Forms. Shared pieces (StyledFormMixin) and the protocol and review forms live here; each
area's own forms live beside it in screening/forms/<area>.py, never inside a view module."""

import json
from typing import TYPE_CHECKING, Any, TypeVar

from django import forms

from ..models import Membership, Review, SearchRun, Stage
from ..services.protocol import STAGE_FIELDS

FieldT = TypeVar("FieldT", bound=forms.Field)


def form_field(form: forms.BaseForm, name: str, kind: type[FieldT]) -> FieldT:
    """`form.fields[name]` as the kind of field it is (the stubs type every field as Field),
    for the forms that set a field's queryset or choices per request."""
    field = form.fields[name]
    if not isinstance(field, kind):
        raise TypeError(f"the field {name!r} is a {type(field).__name__}, not a {kind.__name__}")
    return field


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files under one name (Django's documented pattern): a list of the files sent,
    empty when none was and the field is optional ("required" is refused as usual)."""

    widget = MultipleFileInput

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        single = super().clean
        if isinstance(data, (list, tuple)) and data:
            return [single(item, initial) for item in data]
        cleaned = single(data, initial)
        return [cleaned] if cleaned else []


class SearchRunField(forms.ModelChoiceField):
    """A search run, labelled by its source and search string (and its date when `dated`)."""

    def __init__(self, *args: Any, dated: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dated = dated

    def label_from_instance(self, obj: SearchRun) -> str:
        label = f"{obj.source.name}: {obj.search_string.text[:80]}"
        return label + (f" ({obj.run_on})" if self.dated and obj.run_on else "")


# The mixin only ever comes before a Form or ModelForm; type checkers see it as one.
if TYPE_CHECKING:
    from ..services.protocol import OrderedList

    _FormBase = forms.BaseForm
else:
    _FormBase = object


class StyledFormMixin(_FormBase):
    """Give every widget Bootstrap's class and mark invalid fields for assistive technology."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.style_fields()

    def style_fields(self) -> None:
        """Add Bootstrap's classes; a form that changes its fields after __init__ calls it again."""
        for name, field in self.fields.items():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, (forms.Select, forms.SelectMultiple)):
                css = "form-select"
            else:
                css = "form-control"
            classes = [c for c in widget.attrs.get("class", "").split() if c != "is-invalid"]
            if css not in classes:
                classes.append(css)
            widget.attrs.pop("aria-invalid", None)
            if self.is_bound and name in self.errors:
                classes.append("is-invalid")
                widget.attrs["aria-invalid"] = "true"
            widget.attrs["class"] = " ".join(classes)


class ReviewCreateForm(StyledFormMixin, forms.Form):
    slug = forms.SlugField(max_length=60, help_text="Short name used in URLs, e.g. mlops-slr.")
    title = forms.CharField(max_length=300)
    objectives = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def clean_slug(self):
        slug = self.cleaned_data["slug"]
        if Review.objects.filter(slug=slug).exists():
            raise forms.ValidationError("A review with this slug already exists.")
        return slug


# ----- protocol editing ----------------------------------------------------------------------


class ProtocolItemForm(StyledFormMixin, forms.ModelForm):
    """Base of the inline forms of the protocol's ordered lists (built per list)."""

    def __init__(self, *args, review=None, spec=None, **kwargs):
        self.review = review
        self.spec = spec
        super().__init__(*args, **kwargs)
        for name in self.fields:
            self.fields[name].widget.attrs.setdefault("aria-label", self.fields[name].label)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        value = cleaned.get(self.spec.unique)
        if value:
            clash = self.spec.model.objects.filter(review=self.review, **{self.spec.unique: value})
            if self.instance.pk:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                self.add_error(self.spec.unique, f"{value!r} is already used in this review.")
        return cleaned

    def validate_unique(self):
        # The review is not a form field; uniqueness within the review is checked in clean().
        pass


_ITEM_WIDGETS = {
    "text": forms.Textarea(attrs={"rows": 2}),
    "code": forms.TextInput(attrs={"size": 6, "autocomplete": "off"}),
}


def protocol_item_form_class(spec: "OrderedList[Any]") -> type[ProtocolItemForm]:
    widgets: dict[str, type[forms.Widget] | forms.Widget] = {
        name: _ITEM_WIDGETS[name] for name in spec.fields if name in _ITEM_WIDGETS
    }
    if spec.fields == ("text",):
        widgets["text"] = forms.Textarea(attrs={"rows": 2, "class": "font-monospace"})
    # The class made is a subclass of `form`; django-stubs types it as a plain ModelForm.
    return forms.modelform_factory(  # type: ignore[return-value]
        spec.model, form=ProtocolItemForm, fields=list(spec.fields), widgets=widgets
    )


class MoveForm(forms.Form):
    direction = forms.ChoiceField(choices=[("up", "Up"), ("down", "Down")])


class ReviewBasicsForm(StyledFormMixin, forms.ModelForm):
    class Meta:
        model = Review
        fields = ["title", "objectives"]
        widgets = {"objectives": forms.Textarea(attrs={"rows": 4})}


class ReviewScreeningForm(StyledFormMixin, forms.ModelForm):
    class Meta:
        model = Review
        fields = [
            "screening_mode",
            "blind_mode",
            "highlight_include_terms",
            "highlight_exclude_terms",
        ]
        widgets = {
            "highlight_include_terms": forms.Textarea(attrs={"rows": 3}),
            "highlight_exclude_terms": forms.Textarea(attrs={"rows": 3}),
        }


class ReviewQualityForm(StyledFormMixin, forms.ModelForm):
    quality_threshold = forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=5,
        decimal_places=2,
        label="Exclusion threshold",
        help_text="Studies whose total score is below this are excluded. Leave empty: off.",
    )

    class Meta:
        model = Review
        fields = ["quality_scale", "quality_threshold"]


REVIEW_SETTINGS_FORMS = {
    "basics": ReviewBasicsForm,
    "screening": ReviewScreeningForm,
    "quality": ReviewQualityForm,
}


class StageForm(StyledFormMixin, forms.ModelForm):
    route_include = forms.ChoiceField(label="Include goes to")
    route_uncertain = forms.ChoiceField(label="Uncertain goes to")
    route_exclude = forms.ChoiceField(label="Exclude goes to")

    class Meta:
        model = Stage
        fields = list(STAGE_FIELDS)  # what the stage service saves, one list

    def __init__(self, *args, route_choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("route_include", "route_uncertain", "route_exclude"):
            form_field(self, name, forms.ChoiceField).choices = route_choices
        # StyledFormMixin validated the bound form before the routes' choices were known.
        self._errors = None
        self.style_fields()
        self.fields["reviewers_required"].widget.attrs.update({"min": 1, "max": 10})

    def clean_reviewers_required(self):
        value = self.cleaned_data["reviewers_required"]
        if not 1 <= value <= 10:
            raise forms.ValidationError("Between 1 and 10 reviewers.")
        return value

    def validate_unique(self):
        # Keys are not edited here; the review is not a form field.
        pass


class SearchRunCellForm(StyledFormMixin, forms.Form):
    hits_reported = forms.IntegerField(
        required=False,
        min_value=0,
        label="Hits reported",
        help_text="Empty removes the run.",
    )
    run_on = forms.DateField(
        required=False,
        label="Run on",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    note = forms.CharField(required=False, max_length=300)
    # The date of the run the editor showed: its version is the one the form carries.
    shown_run_on = forms.DateField(required=False, widget=forms.HiddenInput)


class MemberUpdateForm(StyledFormMixin, forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)
    can_import = forms.BooleanField(required=False, label="May import")


class ProtocolImportForm(StyledFormMixin, forms.Form):
    file = forms.FileField(label="Protocol file (JSON)")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > 5 * 1024 * 1024:
            raise forms.ValidationError("A protocol file is at most 5 MB.")
        try:
            return json.loads(upload.read().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise forms.ValidationError(f"This is not a JSON file: {error}") from error
        except RecursionError as error:
            raise forms.ValidationError(
                "This file is nested too deeply to be a protocol file."
            ) from error
