import gzip
import io
import json
import sys
from contextlib import ExitStack

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from screening.services.backup import review_restore

GZIP_MAGIC = b"\x1f\x8b"


class Command(BaseCommand):
    help = (
        "Restore a review from a backup written by export_review (all or nothing; plain or "
        'gzip-compressed; read as a stream). Prints {"review": SLUG}.'
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The backup file ('-' reads stdin).")
        parser.add_argument("--slug", help="Restore under another slug.")

    def handle(self, *args, file, slug=None, **options):
        try:
            with ExitStack() as stack:
                stream = sys.stdin.buffer if file == "-" else stack.enter_context(open(file, "rb"))
                gzipped = isinstance(stream, io.BufferedReader) and stream.peek(2)[:2] == GZIP_MAGIC
                if gzipped:
                    stream = stack.enter_context(gzip.GzipFile(fileobj=stream, mode="rb"))
                review = review_restore(stream=stream, slug=slug)
        except (OSError, EOFError) as error:
            reason = getattr(error, "strerror", None) or error
            raise CommandError(f"Cannot read {file}: {reason}") from error
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        self.stdout.write(json.dumps({"review": review.slug}))
