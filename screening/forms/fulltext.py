"""Forms of the full-text area."""

from django import forms

from . import MultipleFileField, StyledFormMixin


class UploadForm(StyledFormMixin, forms.Form):
    file = forms.FileField(label="PDF")


class NotRetrievableForm(StyledFormMixin, forms.Form):
    reason = forms.CharField(max_length=1000, label="Why it could not be retrieved")


class BulkUploadForm(StyledFormMixin, forms.Form):
    # The metaclass moves declared fields to base_fields: no clash with BaseForm.files.
    files = MultipleFileField(  # type: ignore[assignment]
        label="PDFs, or zips of PDFs",
        required=False,
        help_text="Matched by DOI (in the file name or inside the PDF), else by the file name: "
        "the study's title, or study-<number>.pdf.",
    )
