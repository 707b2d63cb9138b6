import json

from django.core.management.base import BaseCommand, CommandError

from screening.models import Review
from screening.services.dedup import review_deduplicate


class Command(BaseCommand):
    help = (
        "Deduplicate a review's records now (the worker's code, run synchronously). "
        'Prints {"records", "studies", "merged", "candidates"}; merged = records - studies.'
    )

    def add_arguments(self, parser):
        parser.add_argument("--review", required=True, help="The review's slug.")

    def handle(self, *args, review, **options):
        found = Review.objects.filter(slug=review).first()
        if found is None:
            raise CommandError(f"No review with slug {review!r}.")
        counts = review_deduplicate(review=found)
        self.stdout.write(json.dumps(counts))
