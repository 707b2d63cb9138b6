import json
import os
from pathlib import Path

from django.core.management.base import BaseCommand

from screening.services.protocol import demo_review_load

SEED = Path(__file__).resolve().parents[2] / "fixtures" / "mlops_seed.json"
# Local demo only; set DEMO_PASSWORD for anything reachable by others.
DEFAULT_PASSWORD = "slrweb-demo"


class Command(BaseCommand):
    help = (
        "Create the demo review 'mlops-slr' from the seed protocol and its demo accounts, or "
        "leave them as they are. Prints the accounts and passwords as JSON. Passwords come from "
        f"DEMO_PASSWORD (default {DEFAULT_PASSWORD!r}); an existing account's password is never "
        "reset."
    )

    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD") or DEFAULT_PASSWORD
        seed = json.loads(SEED.read_text(encoding="utf-8"))
        review, accounts = demo_review_load(seed=seed, password=password)
        for account in accounts:
            if account["password"] is None:
                self.stderr.write(
                    f"{account['username']}: its password was changed since it was created; "
                    "it is left as is (not printed)."
                )
        self.stdout.write(json.dumps({"review": review.slug, "users": accounts}))
