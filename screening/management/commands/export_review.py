import gzip
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from screening.models import Review
from screening.services.backup import review_backup_write


class Command(BaseCommand):
    help = (
        "Write the full backup of a review (format slrweb-review, version 1) as JSON, on stdout "
        "or into a file (gzip-compressed when its name ends in .gz). Written as it is read: "
        "memory does not grow with the review."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument(
            "--output", "-o", help="Write into this file (replaced only once complete)."
        )

    def handle(self, *args, slug, output=None, **options):
        review = Review.objects.filter(slug=slug).first()
        if review is None:
            raise CommandError(f"No review with slug {slug!r}.")
        if output is None:
            review_backup_write(
                review=review, write=lambda text: self.stdout.write(text, ending="")
            )
            return
        # Written beside the target, then renamed: a failed export leaves the old file whole.
        partial = Path(f"{output}.partial")
        opened = gzip.open if output.endswith(".gz") else open
        try:
            with opened(partial, "wt", encoding="utf-8") as file:
                review_backup_write(review=review, write=file.write)
            os.replace(partial, output)
        except OSError as error:
            raise CommandError(f"Cannot write {output}: {error.strerror or error}") from error
        finally:
            partial.unlink(missing_ok=True)
