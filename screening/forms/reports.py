"""Forms of the reports pages: a funnel box's drill-down and the funnel's polling fragment."""

from django import forms


class BoxForm(forms.Form):
    detail = forms.CharField(required=False, max_length=300)
    page = forms.IntegerField(required=False, min_value=1)


class StatusForm(forms.Form):
    since = forms.IntegerField(required=False, min_value=0)
