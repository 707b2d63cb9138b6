import factory
from django.contrib.auth import get_user_model

from screening.models import Membership, Review
from screening.services.reviews import review_create


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.django.Password("pass-for-tests")


def review_with_cast(*, slug: str = "test-review", title: str = "A test review", **kwargs):
    """A review with the default stages and the fixed cast: owner, two reviewers, a viewer."""
    owner = UserFactory(username="owner")
    review = review_create(slug=slug, title=title, owner=owner, **kwargs)
    cast = {"owner": owner}
    for username, role in [
        ("reviewer", Membership.Role.REVIEWER),
        ("reviewer2", Membership.Role.REVIEWER),
        ("viewer", Membership.Role.VIEWER),
    ]:
        user = UserFactory(username=username)
        Membership.objects.create(review=review, user=user, role=role)
        cast[username] = user
    cast["outsider"] = UserFactory(username="outsider")
    return review, cast


__all__ = ["UserFactory", "Review", "review_with_cast"]
