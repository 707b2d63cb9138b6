"""The form naming a new personal API token."""

from django import forms


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        strip=True,
        help_text="What the token is for, e.g. 'R dashboard on my laptop'.",
    )
