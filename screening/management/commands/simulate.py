import csv
import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from screening.services.ranking import ranking_simulate

MODEL_NAMES = ("svm", "svm-balanced", "logistic", "nb", "svm-unigram", "svm-char")


class Command(BaseCommand):
    help = (
        "Replay a labelled CSV dataset (ASReview style: title, abstract, a 0/1 label column) "
        "through the prioritisation model and print WSS@95, WSS@100, recall at 10 %% and 25 %%, "
        "RRF@10 and seconds per seed and their median, as JSON; with --stopping, where that rule "
        "stops each run and the recall reached there."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True, help="CSV file with a header row.")
        parser.add_argument("--label-column", default="label_included")
        parser.add_argument("--seeds", type=int, default=5, help="Runs with seeds 1..N.")
        parser.add_argument("--model", default="svm", choices=MODEL_NAMES)
        parser.add_argument(
            "--batch-size",
            type=int,
            default=1,
            help="Records screened between two trainings (1 = retrain after every record).",
        )
        parser.add_argument(
            "--stopping",
            choices=("buscar", "heuristic"),
            help="Also report where this stopping rule stops each run, and the recall there.",
        )
        parser.add_argument("--target", type=float, default=0.95, help="BUSCAR recall target.")
        parser.add_argument(
            "--confidence", type=float, default=0.95, help="BUSCAR confidence level."
        )
        parser.add_argument(
            "--streak",
            type=int,
            default=100,
            help="Heuristic: stop after this many consecutive irrelevant records.",
        )
        parser.add_argument(
            "--limit", type=int, default=0, help="Use only the first N rows of the file (0 = all)."
        )

    def handle(
        self,
        *args,
        dataset,
        label_column,
        seeds,
        model,
        batch_size,
        limit,
        stopping,
        target,
        confidence,
        streak,
        **options,
    ):
        if seeds < 1:
            raise CommandError("--seeds must be at least 1.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        path = Path(dataset)
        if not path.is_file():
            raise CommandError(f"No such file: {dataset}")
        csv.field_size_limit(sys.maxsize)
        try:
            with path.open(encoding="utf-8-sig", newline="") as handle:
                rows = list(csv.DictReader(handle))
        except (UnicodeDecodeError, csv.Error) as error:
            raise CommandError(f"{dataset} is not a readable UTF-8 CSV file: {error}") from error
        if limit:
            rows = rows[:limit]
        try:
            report = ranking_simulate(
                rows=rows,
                dataset=path.stem,
                label_column=label_column,
                seeds=seeds,
                model_name=model,
                batch_size=batch_size,
                stopping=stopping,
                target=target,
                confidence=confidence,
                streak=streak,
            )
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(json.dumps(report))
