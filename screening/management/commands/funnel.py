import json

from django.core.management.base import BaseCommand, CommandError

from screening.models import Review
from screening.selectors.reports import funnel_diagram, funnel_prisma_csv, snapshot_funnel
from screening.services.funnel import funnel_compute


class Command(BaseCommand):
    help = (
        "Compute a review's PRISMA 2020 funnel now (the worker's code, synchronously), store it "
        "as a snapshot and print it: JSON (one object), the PRISMA2020 CSV or the SVG diagram."
    )

    def add_arguments(self, parser):
        parser.add_argument("--review", required=True, help="The review's slug.")
        parser.add_argument("--format", choices=["json", "csv", "svg"], default="json")

    def handle(self, *args, review, format="json", **options):
        found = Review.objects.filter(slug=review).first()
        if found is None:
            raise CommandError(f"No review with slug {review!r}.")
        funnel = snapshot_funnel(review=found, snapshot=funnel_compute(review=found))
        if format == "json":
            self.stdout.write(json.dumps(funnel, ensure_ascii=False))
        elif format == "csv":
            self.stdout.write(funnel_prisma_csv(funnel=funnel), ending="")
        else:
            self.stdout.write(funnel_diagram(funnel=funnel, title=found.title), ending="")
