"""Choosing people among a review's reviewers and owners (quality assessors, extractors)."""

from django import forms
from django.contrib.auth import get_user_model

from ..models import Review
from ..selectors.quality import quality_assessor_candidates

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
        self.fields["assessors"].queryset = review_people(review)
