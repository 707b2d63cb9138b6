import json

from django.core.management.base import BaseCommand, CommandError

from screening.models import Review
from screening.services.backup import review_export


class Command(BaseCommand):
    help = "Write the full backup of a review (format slrweb-review, version 1) as JSON on stdout."

    def add_arguments(self, parser):
        parser.add_argument("slug")

    def handle(self, *args, slug, **options):
        review = Review.objects.filter(slug=slug).first()
        if review is None:
            raise CommandError(f"No review with slug {slug!r}.")
        self.stdout.write(json.dumps(review_export(review=review), ensure_ascii=False))
