"""slrweb settings, read from environment variables.

With nothing set, slrweb runs embedded: SQLite in ./var and a Celery worker on kombu's
filesystem transport, so long work never runs inside a web request even on a laptop.
Production sets DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis), DEBUG=0,
SECRET_KEY and ALLOWED_HOSTS. `make run` serves the embedded default with DEBUG off too (see
scripts/run-embedded): only the Django development server and the test suite run with DEBUG on.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SLRWEB_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-only-for-local-use"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "ninja",  # serves the API docs' Swagger UI from our static files (no CDN)
    "axes",
    "csp",
    "screening",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Renews the session's idle expiry (see slrweb/sessions.py): after SessionMiddleware.
    "slrweb.sessions.SessionRenewMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # After the messages and htmx middleware: it reads request.htmx and must consume the
    # messages before MessageMiddleware stores the unread ones for a later page.
    "screening.middleware.HtmxMessagesMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes requires: it turns a locked-out login into its own answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "slrweb.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "slrweb.wsgi.application"

# A web thread keeps its database session ten minutes. A new session cost the request that
# opened it 50-110 ms on PostgreSQL (connecting, the server's catalogue caches filled again,
# the pick prepared again): at one minute, 1.2 % of the decisions of 20 reviewers
# (docs/benchmarks.md).
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'slrweb.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "600")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The screening pick is a prepared statement (screening/selectors/prepared.py) whose
    # planning cost 4-6 ms and whose generic plan runs as fast as a custom one (0.7-0.8 ms at a
    # million studies): planned once per connection, not on each of its first five runs, as
    # PostgreSQL's default (`auto`) would. It also governs PL/pgSQL's cached plans (the count
    # triggers of migrations 0014-0016: single-row writes by key); Django's own statements
    # are sent as text and planned each time, as before.
    _db_options = DATABASES["default"].setdefault("OPTIONS", {})
    _db_options["options"] = " ".join(
        filter(None, [_db_options.get("options", ""), "-c plan_cache_mode=force_generic_plan"])
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded web process and worker share one file: wait for locks instead of failing,
    # and write ahead (WAL) so readers go on while an import's long transaction writes (the
    # rollback journal locked every page out until the import committed).
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # SQLite cannot enforce `nulls_distinct=False` constraints; the services that write those
    # rows look them up under a lock first, and production runs on PostgreSQL, which enforces
    # them.
    SILENCED_SYSTEM_CHECKS = ["models.W047"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # django-axes refuses logins while an account or an address is locked out.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# The policy is shown on every form that sets a password (the validators' help texts).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Uploaded exports and full-text PDFs: private, never served as static files.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))

# Login throttling (django-axes): after AXES_FAILURE_LIMIT failed logins for one account, or
# from one address, further attempts are refused for AXES_COOLOFF_TIME, even with the right
# password. Behind the compose proxy (BEHIND_PROXY=1) the client's address is the one Caddy put
# in X-Forwarded-For (it discards what clients send); otherwise the connection's own address,
# so a client cannot pick the address it is counted under.
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_ORDER = "right-most"
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR") if env_bool("BEHIND_PROXY", False) else ("REMOTE_ADDR",)
)

# Sessions end after SESSION_IDLE_MINUTES without a request (requests renew the expiry);
# "Log out everywhere" on the account page deletes every session of the account.
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_IDLE_MINUTES", "120")) * 60
# Renewed at most once a minute by slrweb.sessions, not written on every request.
SESSION_ENGINE = "slrweb.sessions"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# Password reset and invitation mails: printed on the console (the embedded default) unless
# an SMTP server is configured through EMAIL_HOST and the variables below.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "slrweb <slrweb@localhost>")
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24
# Invitation links (sent through the same e-mail backend) expire after this many days.
SLRWEB_INVITATION_DAYS = int(os.environ.get("SLRWEB_INVITATION_DAYS", "14"))

# Who may create a review: "anyone" signed in (the default; the creator becomes its owner) or
# "staff" (site administrators only).
SLRWEB_REVIEW_CREATION = os.environ.get("SLRWEB_REVIEW_CREATION", "anyone").strip().lower()
if SLRWEB_REVIEW_CREATION not in ("anyone", "staff"):
    raise ImproperlyConfigured("SLRWEB_REVIEW_CREATION must be 'anyone' or 'staff'.")

# Content-Security-Policy: scripts only from our own static files (no inline scripts or event
# handlers); inline style attributes stay allowed. django-csp, as Django 5.2 has none of its own.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "screening:review_list"
LOGOUT_REDIRECT_URL = "login"

# --- Uploads, import limits and import jobs (owned by the imports area; keep in one block) ---
# Every uploaded file streams to an anonymous temporary file in chunks while its sha256 is
# computed (screening/uploads.py); a file past UPLOAD_MAX_FILE_BYTES is dropped as it
# arrives, a request whose declared length passes UPLOAD_MAX_REQUEST_BYTES is not read.
IMPORT_MAX_BYTES = int(os.environ.get("IMPORT_MAX_BYTES", str(200 * 1024 * 1024)))
FULLTEXT_MAX_BYTES = int(os.environ.get("FULLTEXT_MAX_BYTES", str(50 * 1024 * 1024)))
UPLOAD_MAX_FILE_BYTES = max(IMPORT_MAX_BYTES, FULLTEXT_MAX_BYTES)
UPLOAD_MAX_REQUEST_BYTES = int(
    os.environ.get("UPLOAD_MAX_REQUEST_BYTES", str(2 * UPLOAD_MAX_FILE_BYTES))
)
FILE_UPLOAD_HANDLERS = ["screening.uploads.StreamingUploadHandler"]
FILE_UPLOAD_TEMP_DIR = os.environ.get("FILE_UPLOAD_TEMP_DIR") or None
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# Workbooks: unpacked size and rows read (zip bombs and runaway sheets are refused in words).
IMPORT_XLSX_MAX_UNPACKED_BYTES = int(
    os.environ.get("IMPORT_XLSX_MAX_UNPACKED_BYTES", str(200 * 1024 * 1024))
)
IMPORT_MAX_ROWS = int(os.environ.get("IMPORT_MAX_ROWS", "200000"))
# Import jobs (screening.sweep, run by Celery beat every IMPORT_SWEEP_SECONDS): a pending
# import never handed to the broker, or handed over longer than IMPORT_REQUEUE_SECONDS ago,
# is sent again. On PostgreSQL a running import whose worker died (its advisory lock is
# free) and silent for IMPORT_HEARTBEAT_GRACE_SECONDS is marked failed. SQLite has one
# writer (the import transaction holds it), so there the worker keeps a heartbeat FILE
# fresh instead, IMPORT_HEARTBEAT_DIR/<batch id>, touched by a thread every few seconds and
# removed when the import ends: a running import whose file is missing or older than
# IMPORT_HEARTBEAT_FILE_GRACE_SECONDS is marked failed (the file is on this machine, as the
# embedded worker is; IMPORT_HEARTBEAT_FILES=1 selects the file on PostgreSQL too).
IMPORT_SWEEP_SECONDS = float(os.environ.get("IMPORT_SWEEP_SECONDS", "15"))
IMPORT_REQUEUE_SECONDS = int(os.environ.get("IMPORT_REQUEUE_SECONDS", "300"))
IMPORT_HEARTBEAT_GRACE_SECONDS = int(os.environ.get("IMPORT_HEARTBEAT_GRACE_SECONDS", "10"))
IMPORT_HEARTBEAT_FILES = env_bool(
    "IMPORT_HEARTBEAT_FILES", DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
)
IMPORT_HEARTBEAT_DIR = Path(os.environ.get("IMPORT_HEARTBEAT_DIR", VAR_DIR / "import-heartbeats"))
IMPORT_HEARTBEAT_FILE_GRACE_SECONDS = int(
    os.environ.get("IMPORT_HEARTBEAT_FILE_GRACE_SECONDS", "30")
)
# Records left unassigned this long, with no import of their review still going, get a
# deduplication run from the sweep (its first send was lost with the broker or a worker).
DEDUP_SWEEP_AFTER_SECONDS = int(os.environ.get("DEDUP_SWEEP_AFTER_SECONDS", "60"))
# Database connections a deduplication run writes its new studies on at once (PostgreSQL; the
# server's share of a study's cost is most of it). Each worker process running a dedup task
# opens this many more connections while it writes: mind max_connections.
DEDUP_WRITERS = int(os.environ.get("DEDUP_WRITERS", "2"))
# Processes a large deduplication pass scans and scores in (forked from the worker's for the
# pure-Python parts; the result does not depend on their number). Each child's memory is
# mostly the parent's pages, shared until written; mind the machine's memory when raising it.
# Default: the cores this process may run on (its CPU affinity), at most 4.
_USABLE_CORES = (
    len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
)
DEDUP_PROCESSES = int(os.environ.get("DEDUP_PROCESSES", str(min(4, _USABLE_CORES))))
# A deduplication pass creating this many studies or more leaves their search documents (the
# studies page's full-text search, PostgreSQL) to the worker, which fills them after the run:
# about 0.3 ms a study off the run (screening.services.study_search).
SEARCH_DEFER_FROM = int(os.environ.get("SEARCH_DEFER_FROM", "5000"))
# An upload over the request cap is refused unread, CSRF token included: say so, not "expired".
CSRF_FAILURE_VIEW = "screening.views.errors.csrf_failure"
# --- end of the imports block ---

# Celery: Redis in production; a server-less filesystem broker when embedded.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "broker"
    # kombu's filesystem transport does not create its folders; the worker dies without them.
    for _folder in ("out", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        # Exchange tables; kombu's default is ./control in whatever directory the process runs.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
else:
    CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
# Two queues so a long import never holds up a funnel refresh: `heavy` (import, dedup, ranking)
# and `light` (everything else); slrweb.celery.route_task decides. A process whose default
# queue is set to another name (the test fixture's private queue) sends every task there.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "light")
CELERY_TASK_ROUTES = ("slrweb.celery.route_task",)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

if not DEBUG:
    # HTTPS ends at the reverse proxy, which says so in X-Forwarded-Proto. Only a server bound
    # to the loopback interface (the embedded `make run`) turns SECURE_SSL_REDIRECT off, and
    # then its cookies cannot be marked secure either: the browser talks plain HTTP to it.
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # The container health check asks the web process directly, over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = SECURE_SSL_REDIRECT
    CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
