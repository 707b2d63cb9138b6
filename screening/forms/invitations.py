"""Invitation forms: the owner's invitation, and the invitee's new account."""

from django import forms
from django.contrib.auth.forms import UserCreationForm

from ..models import Membership
from . import StyledFormMixin


class InvitationForm(StyledFormMixin, forms.Form):
    invitee = forms.CharField(
        label="E-mail address or username",
        max_length=254,
        help_text="An e-mail address gets a link by mail; an existing username sees the "
        "invitation on their review list (and by mail if their account has an address).",
    )
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.REVIEWER)


class InvitationSignUpForm(StyledFormMixin, UserCreationForm):
    """A new account from an invitation link: username and password (the e-mail is the
    invitation's)."""

    # django-stubs leave out the Meta that UserCreationForm inherits.
    class Meta(UserCreationForm.Meta):  # type: ignore[name-defined]
        fields = ("username",)
