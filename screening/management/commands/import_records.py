import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from screening.domain.parsers import FORMATS
from screening.models import Review
from screening.services.imports import (
    batch_create,
    batch_result,
    batch_run,
    search_run_resolve,
    source_resolve,
)


def _message(error: ValidationError) -> str:
    return " ".join(error.messages)


class Command(BaseCommand):
    help = (
        "Import export files into a review through the same code as the browser upload "
        "(validate and store, then parse and insert synchronously). Prints one JSON object."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument("--review", required=True, help="Slug of the review.")
        parser.add_argument("--source", required=True, help="Digital library (created if new).")
        parser.add_argument("--search-string", help="Search string these files answer.")
        parser.add_argument(
            "--format", choices=sorted(FORMATS), help="Skip format detection and use this one."
        )

    def handle(self, *args, files, review, source, search_string=None, format=None, **options):
        review_obj = Review.objects.filter(slug=review).first()
        if review_obj is None:
            raise CommandError(f"No review with slug {review!r}.")
        try:
            source_obj = source_resolve(review=review_obj, name=source)
            run = (
                search_run_resolve(review=review_obj, source=source_obj, text=search_string)
                if search_string
                else None
            )
        except ValidationError as error:
            raise CommandError(_message(error)) from error
        results = []
        for file_arg in files:
            path = Path(file_arg)
            try:
                export = path.open("rb")
            except OSError as error:
                results.append(_refused(path.name, f"cannot read {file_arg}: {error.strerror}"))
                continue
            # Streamed like a browser upload: hashed and stored in chunks, never read whole.
            with export:
                try:
                    batch = batch_create(
                        review=review_obj,
                        source=source_obj,
                        uploaded_by=None,
                        file_name=path.name,
                        data=export,
                        search_run=run,
                        format=format,
                        enqueue=False,
                    )
                except ValidationError as error:
                    results.append(_refused(path.name, _message(error)))
                    continue
            ran = batch_run(batch_id=batch.pk)
            if ran is None:
                results.append(_refused(path.name, "the import was deleted while it ran"))
                continue
            results.append(batch_result(ran))
        total = sum(item["records"] for item in results if item["status"] == "done")
        self.stdout.write(json.dumps({"review": review, "records": total, "files": results}))
        bad = [item for item in results if item["status"] != "done"]
        if bad:
            details = "; ".join(f"{item['file']}: {item['error']}" for item in bad)
            raise CommandError(f"{len(bad)} of {len(results)} files were not imported. {details}")


def _refused(name: str, error: str) -> dict:
    return {
        "file": name,
        "batch": None,
        "status": "refused",
        "format": None,
        "records": 0,
        "with_title": 0,
        "with_abstract": 0,
        "skipped": 0,
        "warnings": [],
        "error": error,
    }
