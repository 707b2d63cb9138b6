import json
import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from screening.services.backup import review_import


class Command(BaseCommand):
    help = (
        "Restore a review from a backup written by export_review (all or nothing). "
        'Prints {"review": SLUG}.'
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The backup file ('-' reads stdin).")
        parser.add_argument("--slug", help="Restore under another slug.")

    def handle(self, *args, file, slug=None, **options):
        try:
            if file == "-":
                text = sys.stdin.read()
            else:
                text = Path(file).read_text(encoding="utf-8")
            data = json.loads(text)
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}") from error
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CommandError(f"{file} is not a JSON file: {error}") from error
        except RecursionError as error:
            raise CommandError(f"{file} is nested too deeply to be a backup.") from error
        try:
            review = review_import(data=data, slug=slug)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        self.stdout.write(json.dumps({"review": review.slug}))
