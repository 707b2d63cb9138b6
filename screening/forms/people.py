"""Choosing people among a review's reviewers and owners (quality assessors, extractors)."""

from django import forms
from django.contrib.auth import get_user_model

from ..models import Review
from ..selectors.quality import quality_assessor_candidates
from . import StyledFormMixin, form_field

User = get_user_model()


def review_people(review: Review):
    """The review's reviewers and owners, by username: who may assess or extract."""
    ids = quality_assessor_candidates(review=review).values("user_id")
    return User.objects.filter(pk__in=ids).order_by("username")


class PeopleField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return obj.get_username()


class PeopleForm(forms.Form):
    """Limits the people to the review's reviewers and owners.

    StyledFormMixin validates in its __init__, so it must come first in the bases: the
    queryset is then set before validation runs.
    """

    def __init__(self, *args, review: Review, **kwargs):
        super().__init__(*args, **kwargs)
        form_field(self, "assessors", forms.ModelChoiceField).queryset = review_people(review)


class AssignPeopleForm(StyledFormMixin, PeopleForm):
    """One or two people for one study (quality assessors, extractors)."""

    assessors = PeopleField(queryset=User.objects.none(), help_text="One or two people.")

    def clean_assessors(self):
        chosen = self.cleaned_data["assessors"]
        if len(chosen) > 2:
            raise forms.ValidationError("Choose one or two people.")
        return chosen


class BulkAssignPeopleForm(StyledFormMixin, PeopleForm):
    """People shared among the studies that have none; `noun` names their role."""

    noun = "assessors"
    per_study_initial = 2
    assessors = PeopleField(queryset=User.objects.none())
    per_study = forms.TypedChoiceField(choices=[(1, "1"), (2, "2")], coerce=int)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assessors"].label = self.noun.capitalize()
        self.fields["assessors"].help_text = f"Studies without {self.noun} are shared among them."
        self.fields["per_study"].label = f"{self.noun.capitalize()} per study"
        self.fields["per_study"].initial = self.per_study_initial

    def clean(self):
        super().clean()
        data = self.cleaned_data
        if (
            "assessors" in data
            and "per_study" in data
            and len(data["assessors"]) < data["per_study"]
        ):
            raise forms.ValidationError(
                f"Choose at least {data['per_study']} people to give each study "
                f"{data['per_study']} {self.noun}."
            )
        return data
