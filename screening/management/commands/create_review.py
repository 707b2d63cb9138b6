import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from screening.models import Review
from screening.services.reviews import review_create


class Command(BaseCommand):
    help = 'Create an empty review with the default stages. Prints {"review": SLUG}.'

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True)
        parser.add_argument("--title", required=True)
        parser.add_argument("--owner", help="Username of the owner (must exist).")

    def handle(self, *args, slug, title, owner=None, **options):
        from django.utils.text import slugify

        if slugify(slug) != slug:
            raise CommandError(f"Slug {slug!r} may hold only lowercase letters, digits and '-'.")
        if Review.objects.filter(slug=slug).exists():
            raise CommandError(f"A review with slug {slug!r} already exists.")
        owner_user = None
        if owner:
            owner_user = get_user_model().objects.filter(username=owner).first()
            if owner_user is None:
                raise CommandError(f"No user named {owner!r}.")
        review = review_create(slug=slug, title=title, owner=owner_user)
        self.stdout.write(json.dumps({"review": review.slug}))
