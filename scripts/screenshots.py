"""Screenshots of the screening page at 1280 px and 390 px wide, for docs/screenshots/.

A throwaway review ("screenshots") with a few real records (titles and abstracts of
$SLRWEB_SHARED_DATA/exports/asreview-demo-data/embase.csv) is created in the database named by
DATABASE_URL, served by Django on a local port, photographed with Playwright driving
/usr/bin/chromium, then deleted.

  DATABASE_URL=postgres://postgres@127.0.0.1:5432/slrweb SLRWEB_SHARED_DATA=/work/shared/data \\
      .venv/bin/python scripts/screenshots.py [--out docs/screenshots]
"""

import argparse
import csv
import os
import re
import sys
import threading
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "slrweb.settings")

import django  # noqa: E402

django.setup()

from django.contrib.staticfiles.handlers import StaticFilesHandler  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from screening.models import Criterion, Membership, Review, Stage, Study  # noqa: E402
from screening.services.reviews import review_create, user_get_or_create  # noqa: E402

SLUG = "screenshots"
PASSWORD = "screenshots-only-password"
SIZES = {"1280": (1280, 900), "390": (390, 844)}


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def build() -> None:
    Review.objects.filter(slug=SLUG).delete()
    owner, _ = user_get_or_create(username="screenshots-owner")
    reviewer, _ = user_get_or_create(username="screenshots-reviewer")
    reviewer.set_password(PASSWORD)
    reviewer.save()
    review = review_create(slug=SLUG, title="Duplication cysts: endoscopic diagnosis", owner=owner)
    Membership.objects.create(review=review, user=reviewer, role=Membership.Role.REVIEWER)
    for i, text in enumerate(["Not a primary study", "Not about the population", "No outcome"]):
        Criterion.objects.create(
            review=review, kind=Criterion.Kind.EXCLUSION, code=f"EC{i + 1}", text=text
        )
    review.highlight_include_terms = "endoscopic ultrasound\ncyst"
    review.highlight_exclude_terms = "case report"
    review.save()
    data = Path(os.environ["SLRWEB_SHARED_DATA"]) / "exports/asreview-demo-data/embase.csv"
    stage = Stage.objects.get(review=review, key="abstract")
    with data.open(encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("Title") and r.get("Abstract")][:5]
    for row in rows:
        Study.objects.create(
            review=review,
            title=row["Title"],
            abstract=row["Abstract"],
            venue=row.get("Source", "")[:200],
            year=int(year.group(0))
            if (year := re.search(r"\b(19|20)\d\d\b", row.get("Source", "")))
            else None,
            current_stage=stage,
        )


def shoot(base_url: str, out: Path) -> list[Path]:
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"]
        )
        for label, (width, height) in SIZES.items():
            context = browser.new_context(
                base_url=base_url,
                viewport={"width": width, "height": height},
                is_mobile=width < 768,
                has_touch=width < 768,
            )
            page = context.new_page()
            page.goto("/accounts/login/")
            page.fill("#id_username", "screenshots-reviewer")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(lambda url: "/accounts/login/" not in url)
            page.goto(f"/r/{SLUG}/screen/abstract/")
            page.wait_for_selector("#screen-panel[data-study]")
            path = out / f"screening-{label}.png"
            page.screenshot(path=str(path))
            written.append(path)
            context.close()
        browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs/screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    build()
    server = make_server(
        "127.0.0.1", 0, StaticFilesHandler(get_wsgi_application()), _Server, _Quiet
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for path in shoot(f"http://127.0.0.1:{server.server_port}", args.out):
            print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    finally:
        server.shutdown()
        Review.objects.filter(slug=SLUG).delete()


if __name__ == "__main__":
    main()
