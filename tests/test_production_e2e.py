"""End to end against a running slrweb with production settings, as a user in Chromium.

Not part of the normal suite: scripts/ci-production (gunicorn, PostgreSQL, Celery on Redis,
Caddy with TLS) and scripts/ci-embedded (`make run`'s gunicorn, SQLite, filesystem broker) start
the server and run this file with SLRWEB_E2E_URL and the demo accounts' SLRWEB_E2E_PASSWORD;
scripts/ci-embedded also passes SLRWEB_E2E_SERVER_LOG, the server's console, where the console
e-mail backend prints the mails.

The owner imports two real exports, the worker imports and deduplicates them, two reviewers
disagree on a study, the owner resolves the conflict, the funnel is computed and the PRISMA
diagram and an export are downloaded. Every answer on the way is checked: no server error, no
debug page, the security headers, far-future caching of hashed static files and no
Content-Security-Policy violation in the browser.
"""

import http.client
import os
import re
import secrets
import ssl
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from .conftest import REPO_ROOT, SHARED_DATA
from .waiting import wait_until

BASE_URL = os.environ.get("SLRWEB_E2E_URL", "")
PASSWORD = os.environ.get("SLRWEB_E2E_PASSWORD", "")
SERVER_LOG = os.environ.get("SLRWEB_E2E_SERVER_LOG", "")
HTTPS = BASE_URL.startswith("https://")
SLUG = "mlops-slr"
EXPORTS = SHARED_DATA / "exports" / "asreview-citation-file-formatting" / "RIS"
FILES = [EXPORTS / "_baseline_covidence_endnote.ris", EXPORTS / "_baseline_covidence_zotero.ris"]
SETTLED = ":not(.htmx-added):not(.htmx-settling)"
WORKER_TIMEOUT = 120_000
HASHED_STATIC = re.compile(r"/static/.+\.[0-9a-f]{12}\.(css|js)$")
DEBUG_MARKERS = ("Traceback", "DEBUG = True", "Using the URLconf", "technical_500")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.skipif(not BASE_URL, reason="run by scripts/ci-production and scripts/ci-embedded"),
]


class Observed:
    """What the browser received: every answer's status and headers, CSP violations."""

    def __init__(self):
        self.failures: list[str] = []
        self.documents = 0
        self.static_files = 0
        self.unread = 0

    def response(self, response):
        url, status = response.url, response.status
        if not url.startswith(BASE_URL):
            return
        headers = response.all_headers()
        if status >= 500:
            self.failures.append(f"{status} from {url}")
        content_type = headers.get("content-type", "")
        if content_type.startswith("text/html") and not 300 <= status < 400:
            self.documents += 1
            self.check_security_headers(url, headers)
            try:
                body = response.text()
            except PlaywrightError:
                # The page moved on before the body was read (a download, a closing context).
                self.unread += 1
                return
            for marker in DEBUG_MARKERS:
                if marker in body:
                    self.failures.append(f"debug page ({marker!r}) at {url}")
        if "/static/" in url and status == 200:
            self.static_files += 1
            cache = headers.get("cache-control", "")
            if not HASHED_STATIC.search(url.split("?")[0]):
                self.failures.append(f"static file without a hashed name: {url}")
            if "max-age=315360000" not in cache or "immutable" not in cache:
                self.failures.append(f"static file {url} cached only {cache!r}")

    def check_security_headers(self, url, headers):
        expected = {
            "x-content-type-options": "nosniff",
            "x-frame-options": "DENY",
            "referrer-policy": "same-origin",
        }
        for name, value in expected.items():
            if headers.get(name) != value:
                self.failures.append(f"{url}: {name} is {headers.get(name)!r}, not {value!r}")
        policy = headers.get("content-security-policy", "")
        if not re.search(r"(^|;)\s*script-src 'self'\s*(;|$)", policy):
            self.failures.append(f"{url}: scripts not limited to our files: {policy!r}")
        hsts = headers.get("strict-transport-security", "")
        if HTTPS and "max-age=31536000" not in hsts:
            self.failures.append(f"{url}: no HSTS over https ({hsts!r})")
        if not HTTPS and hsts:
            self.failures.append(f"{url}: HSTS over plain http")

    def console(self, message):
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.failures.append(f"CSP violation: {message.text}")


@pytest.fixture
def observed():
    return Observed()


@pytest.fixture
def login(browser, observed):
    contexts = []

    def log_in(username: str):
        context = browser.new_context(
            base_url=BASE_URL, ignore_https_errors=True, viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(15_000)
        context.on("response", observed.response)
        contexts.append(context)
        page = context.new_page()
        page.on("console", observed.console)
        page.goto("/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
        return page

    yield log_in
    for context in contexts:
        context.close()


def upload(page, path: Path, source_index: int, done: int):
    page.goto(f"/r/{SLUG}/imports/")
    page.set_input_files("#id_files", str(path))
    page.select_option("#id_source", index=source_index)
    page.click("#upload-button")
    # The progress fragment polls until the worker has imported the file.
    expect(page.locator(".batch-progress[data-status=done]")).to_have_count(
        done, timeout=WORKER_TIMEOUT
    )


def current_study(page) -> int:
    panel = page.wait_for_selector(f"#screen-panel[data-study]{SETTLED}")
    return int(panel.get_attribute("data-study"))


def decide(page, keys: str, study: int):
    for key in keys.split():
        page.keyboard.press(key)
    page.wait_for_selector(
        f'#screen-panel:not([data-study="{study}"]){SETTLED}, #done-title', state="attached"
    )


def download(page, name: str) -> bytes:
    # Each download from a freshly loaded page: Chromium holds back quick successive downloads.
    page.goto(f"/r/{SLUG}/reports/")
    with page.expect_download(timeout=30_000) as info:
        page.click(f'a[data-download="{name}"]')
    assert info.value.suggested_filename == f"{SLUG}-{name}"
    return Path(info.value.path()).read_bytes()


def test_a_review_from_import_to_prisma_diagram(login, observed):
    owner = login("demo-owner")

    missing = owner.goto("/no-such-page/")
    assert missing.status == 404
    assert "Page not found" in owner.inner_text("main")
    assert owner.locator("a[href='/']").count() >= 1

    # Import: two real exports from two sources, each imported by the heavy worker.
    for number, path in enumerate(FILES, start=1):
        upload(owner, path, source_index=number, done=number)
    assert "Failed" not in owner.inner_text("#batches")

    # Deduplication runs on the worker after each import; wait until every record has a study.
    owner.goto(f"/r/{SLUG}/duplicates/")
    owner.wait_for_selector(
        "#dedup-status:has-text('Every imported record belongs to a study')",
        timeout=WORKER_TIMEOUT,
    )

    # Screening: reviewer 1 includes a study that reviewer 2 excludes.
    first = login("demo-reviewer1")
    first.goto(f"/r/{SLUG}/screen/title/")
    contested = current_study(first)
    decide(first, "i", contested)
    second = login("demo-reviewer2")
    second.goto(f"/r/{SLUG}/screen/title/")
    for _ in range(40):
        shown = current_study(second)
        if shown == contested:
            decide(second, "e", shown)
            break
        decide(second, "s", shown)
    else:
        pytest.fail(f"reviewer 2 was never offered study {contested}")

    # The owner resolves the conflict; after a reload it is gone from the list.
    owner.goto(f"/r/{SLUG}/conflicts/")
    card = owner.locator(f"#conflict-{contested}")
    assert "Include" in card.inner_text() and "Exclude" in card.inner_text()
    card.get_by_text("Include I", exact=True).click()
    card.get_by_label("Note").fill("Meets the inclusion criteria on reading")
    card.get_by_role("button", name="Resolve").click()
    owner.wait_for_selector(f"#conflict-{contested}", state="detached")
    owner.reload()
    assert owner.locator(f"#conflict-{contested}").count() == 0
    second.goto(f"/r/{SLUG}/conflicts/")
    assert second.locator(f"#conflict-{contested}").count() == 0

    # Funnel on the light worker, then the PRISMA diagram and an export.
    owner.goto(f"/r/{SLUG}/reports/")
    owner.keyboard.press("r")
    owner.wait_for_selector("svg.prisma-diagram", timeout=WORKER_TIMEOUT)
    diagram = ET.fromstring(download(owner, "prisma.svg"))
    text = "".join(diagram.itertext())
    assert re.search(r"\(n = \d", text)
    exported = download(owner, "funnel.json")
    assert exported.startswith(b"{")

    assert observed.documents > 10 and observed.static_files >= 3
    assert observed.unread <= observed.documents // 4
    assert observed.failures == []


@pytest.mark.skipif(not SERVER_LOG, reason="needs the server's console (scripts/ci-embedded)")
def test_a_newcomer_invited_by_the_owner_sets_a_password_from_the_console_mail_and_screens(
    browser, login, observed
):
    owner = login("demo-owner")
    owner.goto(f"/r/{SLUG}/invitations/")
    address = f"newcomer-{secrets.token_hex(4)}@example.org"
    owner.fill("#id_invitee", address)
    owner.select_option("#id_role", "reviewer")
    owner.click("button:has-text('Invite')")
    owner.wait_for_selector(f"text=Invitation sent to {address}")

    # The console backend printed the mail on the server's console (make run's terminal).
    def mailed_link():
        log = Path(SERVER_LOG).read_text(errors="replace")
        mail = log[log.rfind(f"To: {address}") :] if f"To: {address}" in log else ""
        found = re.search(r"https?://[^/\s]+(/invitations/\S+/)", mail)
        return found and found.group(1)

    link = wait_until(mailed_link, timeout=30)
    context = browser.new_context(
        base_url=BASE_URL, ignore_https_errors=True, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    context.on("response", observed.response)
    try:
        newcomer = context.new_page()
        newcomer.on("console", observed.console)
        newcomer.goto(link)
        newcomer.fill("#id_username", address.split("@")[0])
        newcomer.fill("#id_password1", "a-newcomer-password-31")
        newcomer.fill("#id_password2", "a-newcomer-password-31")
        newcomer.click("button:has-text('Create account and join')")
        # A reviewer lands on the first stage with studies left for them.
        newcomer.wait_for_url(re.compile(rf"/r/{SLUG}/screen/[a-z_]+/$"))
        left = int(newcomer.inner_text("[data-progress=left]").replace(",", ""))
        shown = current_study(newcomer)
        decide(newcomer, "e", shown)
        newcomer.reload()
        assert newcomer.inner_text("[data-progress=mine]") == "1"
        assert int(newcomer.inner_text("[data-progress=left]").replace(",", "")) == left - 1
        newcomer.goto(link)
        assert "already been used" in newcomer.inner_text("main")
    finally:
        context.close()
    owner.reload()
    assert owner.locator(f"text={address}").count() == 0
    assert observed.failures == []


def caddy_body_cap() -> int:
    """The request-body cap the Caddyfile applies (SLRWEB_MAX_BODY, its default otherwise)."""
    if os.environ.get("SLRWEB_MAX_BODY"):
        return int(os.environ["SLRWEB_MAX_BODY"])
    caddyfile = (REPO_ROOT / "Caddyfile").read_text()
    return int(re.search(r"max_size \{\$SLRWEB_MAX_BODY:(\d+)\}", caddyfile).group(1))


def post_declaring(length: int, sent: bytes) -> tuple[int, dict[str, str], bytes]:
    """POST to the login page declaring `length` bytes of body and sending only `sent`."""
    url = urllib.parse.urlsplit(BASE_URL)
    connection = http.client.HTTPSConnection(
        url.hostname, url.port, context=ssl._create_unverified_context(), timeout=30
    )
    try:
        connection.putrequest("POST", "/accounts/login/")
        connection.putheader("Content-Type", "application/x-www-form-urlencoded")
        connection.putheader("Content-Length", str(length))
        connection.endheaders()
        try:
            connection.send(sent)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the proxy answered and closed before the body was read: what we want
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.mark.skipif(not HTTPS, reason="the body cap is Caddy's (scripts/ci-production)")
def test_a_body_over_the_proxy_cap_is_refused_by_caddy_unread():
    cap = caddy_body_cap()
    form = b"username=nobody&password=x"
    # The control: the same POST within the cap reaches Django, which refuses it (no CSRF
    # token) with its own headers.
    status, headers, _ = post_declaring(len(form), form)
    assert status == 403 and headers.get("x-frame-options") == "DENY"
    # Over the cap by one byte, as declared: Caddy answers 413 at once from the header (the body
    # is never sent whole, so the test stays cheap) and Django never answers (none of its headers).
    status, headers, body = post_declaring(cap + 1, form)
    assert status == 413
    assert b"larger than this server accepts" in body
    assert "x-frame-options" not in headers and "content-security-policy" not in headers
