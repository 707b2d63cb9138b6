from django import forms

from .models import Review


class StyledFormMixin:
    """Give every widget Bootstrap's class and mark invalid fields for assistive technology."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, (forms.Select, forms.SelectMultiple)):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()
            if self.is_bound and name in self.errors:
                widget.attrs["class"] += " is-invalid"
                widget.attrs["aria-invalid"] = "true"


class ReviewCreateForm(StyledFormMixin, forms.Form):
    slug = forms.SlugField(max_length=60, help_text="Short name used in URLs, e.g. mlops-slr.")
    title = forms.CharField(max_length=300)
    objectives = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def clean_slug(self):
        slug = self.cleaned_data["slug"]
        if Review.objects.filter(slug=slug).exists():
            raise forms.ValidationError("A review with this slug already exists.")
        return slug
