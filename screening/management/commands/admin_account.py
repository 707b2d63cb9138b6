import json
import os
import secrets

from django.core.management.base import BaseCommand

from screening.services.accounts import admin_account_ensure


class Command(BaseCommand):
    help = (
        "Create the site administrator once (staff and superuser: creates reviews, opens /admin/) "
        'and print it as JSON: {"username", "password", "created"}. The password comes from '
        "SLRWEB_ADMIN_PASSWORD, else it is generated and printed this one time; an existing "
        "account is left as it is and printed with password null."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("SLRWEB_ADMIN_USER", "admin"))
        parser.add_argument("--email", default=os.environ.get("SLRWEB_ADMIN_EMAIL", ""))

    def handle(self, *args, username, email, **options):
        password = os.environ.get("SLRWEB_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        _, created = admin_account_ensure(username=username, password=password, email=email)
        self.stdout.write(
            json.dumps(
                {
                    "username": username,
                    "password": password if created else None,
                    "created": created,
                }
            )
        )
