"""Forms of the deduplication queue and the merged-studies list."""

from django import forms

MAX_SKIPPED = 200


class SkipForm(forms.Form):
    skip = forms.RegexField(regex=r"^\d+(,\d+)*$", required=False, max_length=2000)

    def skipped(self) -> tuple[int, ...]:
        raw = self.cleaned_data.get("skip") or ""
        return tuple(int(x) for x in raw.split(",") if x)[:MAX_SKIPPED]


class DecideForm(SkipForm):
    candidate = forms.IntegerField(min_value=1)
    verdict = forms.ChoiceField(
        choices=[("duplicate", "Duplicate"), ("not_duplicate", "Not duplicate")]
    )


class MergedFilterForm(forms.Form):
    """Search and page of the merged-studies list (also posted back by unmerge and split, so
    the list answers with the page the reviewer was on)."""

    q = forms.CharField(required=False, max_length=200, strip=True)
    page = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)
