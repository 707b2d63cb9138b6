from django.core.management.base import BaseCommand, CommandError

from screening.models import Review
from screening.selectors.prisma_s import prisma_s_document


class Command(BaseCommand):
    help = (
        "Print a review's PRISMA-S search report (Rethlefsen et al. 2021): JSON "
        '{"items": [{"number", "item", "text", "source"}]} with all 16 items, or Markdown.'
    )

    def add_arguments(self, parser):
        parser.add_argument("--review", required=True, help="The review's slug.")
        parser.add_argument("--format", choices=["json", "md"], default="json")

    def handle(self, *args, **options):
        review = Review.objects.filter(slug=options["review"]).first()
        if review is None:
            raise CommandError(f"No review with slug {options['review']!r}.")
        self.stdout.write(prisma_s_document(review=review, fmt=options["format"]).rstrip("\n"))
