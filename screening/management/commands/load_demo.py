import json
import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from screening.demo_data import seed_protocol
from screening.services.demo import demo_review_populate
from screening.services.protocol import demo_review_load

# Local demo only; set DEMO_PASSWORD for anything reachable by others.
DEFAULT_PASSWORD = "slrweb-demo"


class Command(BaseCommand):
    help = (
        "Create the demo review 'mlops-slr' from the seed protocol and its demo accounts, or "
        "leave them as they are. Prints the accounts and passwords as JSON. Passwords come from "
        f"DEMO_PASSWORD (default {DEFAULT_PASSWORD!r}); an existing account's password is never "
        "reset. Unless --bare (or SLRWEB_DEMO_BARE=1 without --living), a review without "
        "imports is then filled: the seed's 30 included studies among generated records in "
        "the four libraries' export formats, imported, deduplicated and partly screened by the "
        "demo team (a few minutes, once)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--bare",
            action="store_true",
            help="Only the protocol and the accounts: no records, decisions or assessments "
            "(the default when the environment sets SLRWEB_DEMO_BARE=1).",
        )
        parser.add_argument(
            "--living",
            action="store_true",
            help="Fill the review even when SLRWEB_DEMO_BARE=1 (the test suite sets it).",
        )

    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD") or DEFAULT_PASSWORD
        review, accounts = demo_review_load(seed=seed_protocol(), password=password)
        for account in accounts:
            if account["password"] is None:
                self.stderr.write(
                    f"{account['username']}: its password was changed since it was created; "
                    "it is left as is (not printed)."
                )
        bare = options["bare"] or (
            os.environ.get("SLRWEB_DEMO_BARE") == "1" and not options["living"]
        )
        if not bare:
            people = get_user_model().objects.in_bulk(
                [a["username"] for a in accounts], field_name="username"
            )
            reviewers = [people[a["username"]] for a in accounts if a["role"] == "reviewer"]
            owner = people[accounts[0]["username"]]
            if demo_review_populate(review=review, owner=owner, reviewers=reviewers):
                self.stderr.write("The demo review was filled with records and decisions.")
        self.stdout.write(json.dumps({"review": review.slug, "users": accounts}))
