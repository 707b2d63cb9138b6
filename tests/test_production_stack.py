"""The image, the compose stack and the production settings, read as files and run as commands
(no Docker engine here: docker-compose.yml is parsed and its services checked)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.test import Client, RequestFactory
from django.views.defaults import server_error

from slrweb.celery import app, route_task

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def command_of(service) -> str:
    command = service["command"]
    return command if isinstance(command, str) else " ".join(command)


def test_compose_runs_db_redis_web_two_workers_beat_and_a_tls_proxy(compose):
    services = compose["services"]
    assert set(services) == {"db", "redis", "web", "worker-heavy", "worker-light", "beat", "proxy"}
    assert services["db"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    assert services["proxy"]["image"].startswith("caddy:")
    web = command_of(services["web"])
    assert web.index("migrate --noinput") < web.index("gunicorn slrweb.wsgi:application")
    assert "-Q heavy" in command_of(services["worker-heavy"])
    assert "-Q light" in command_of(services["worker-light"])
    assert "celery -A slrweb beat" in command_of(services["beat"])
    # Only the proxy is reachable from outside; the web process is not published.
    assert "ports" not in services["web"]
    assert sorted(services["proxy"]["ports"]) == ["443:443", "80:80"]
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in services["proxy"]["volumes"]


def test_compose_services_have_health_checks_and_start_in_order(compose):
    services = compose["services"]
    for name in ("db", "redis", "web", "worker-heavy", "worker-light"):
        assert services[name]["healthcheck"]["test"], name
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert "inspect ping" in " ".join(services["worker-heavy"]["healthcheck"]["test"])
    assert services["web"]["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("worker-heavy", "worker-light", "beat", "proxy"):
        assert services[name]["depends_on"]["web"]["condition"] == "service_healthy"


def test_compose_app_services_run_production_settings_behind_https(compose):
    for name in ("web", "worker-heavy", "worker-light", "beat"):
        environment = compose["services"][name]["environment"]
        assert environment["DEBUG"] == "0"
        assert environment["SECURE_SSL_REDIRECT"] == "1"
        assert environment["BEHIND_PROXY"] == "1"
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert environment["CELERY_BROKER_URL"].startswith("redis://")
        assert "SECRET_KEY" in environment


def test_caddy_terminates_tls_with_an_internal_certificate_for_localhost():
    caddyfile = (REPO_ROOT / "Caddyfile").read_text()
    assert "{$SLRWEB_SITE:localhost} {" in caddyfile
    assert "tls {$SLRWEB_TLS:internal}" in caddyfile
    assert "reverse_proxy {$SLRWEB_UPSTREAM:web:8000}" in caddyfile


def test_compose_web_and_workers_scale_to_several_replicas(compose):
    """`docker compose up --scale web=N --scale worker-heavy=N` needs no fixed name or host port
    on the services that scale, and every replica shares the uploads volume."""
    for name in ("web", "worker-heavy", "worker-light"):
        service = compose["services"][name]
        assert "container_name" not in service
        assert "ports" not in service
        assert "media:/data/media" in service["volumes"]
    for name in ("worker-heavy", "worker-light"):
        # Each replica names itself after its own host (%h), so replicas never collide.
        assert "@%h" in command_of(compose["services"][name])


@pytest.mark.skipif(shutil.which("caddy") is None, reason="no caddy binary installed")
def test_caddy_takes_several_web_processes_in_turn_and_retries_the_next():
    adapted = subprocess.run(
        ["caddy", "adapt", "--config", "Caddyfile", "--adapter", "caddyfile"],
        cwd=REPO_ROOT,
        env=dict(os.environ, SLRWEB_UPSTREAM="10.0.0.2:8000 10.0.0.3:8000"),
        capture_output=True,
        text=True,
        check=True,
    )
    config = json.loads(adapted.stdout)
    handlers = [
        handler
        for server in config["apps"]["http"]["servers"].values()
        for route in server["routes"]
        for sub in route["handle"]
        for subroute in sub.get("routes", [])
        for handler in subroute["handle"]
        if handler["handler"] == "reverse_proxy"
    ]
    assert len(handlers) == 1
    proxy = handlers[0]
    assert [upstream["dial"] for upstream in proxy["upstreams"]] == [
        "10.0.0.2:8000",
        "10.0.0.3:8000",
    ]
    assert proxy["load_balancing"]["selection_policy"] == {"policy": "round_robin"}
    assert proxy["load_balancing"]["try_duration"] == 5_000_000_000


def test_image_runs_as_a_non_root_user_with_locked_dependencies_and_a_health_check():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "RUN pip install --constraint requirements.lock ." in dockerfile
    assert "--constraint requirements.lock" in (REPO_ROOT / "Makefile").read_text()
    assert "\nUSER slrweb\n" in dockerfile
    assert "HEALTHCHECK" in dockerfile and "/healthz" in dockerfile
    assert "collectstatic" in dockerfile


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    for entry in (".venv", "var/", "*.sqlite3", "media/", ".env", ".git"):
        assert entry in ignored


def test_env_example_names_what_compose_requires(compose):
    example = (REPO_ROOT / ".env.example").read_text()
    for name in (
        "SECRET_KEY=",
        "ALLOWED_HOSTS=",
        "SLRWEB_SITE=",
        "POSTGRES_PASSWORD=",
        "EMAIL_HOST=",
    ):
        assert f"\n{name}" in example


def test_the_lock_pins_every_dependency_named_in_pyproject():
    pinned = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (REPO_ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line
    }
    for name in ("django", "celery", "gunicorn", "whitenoise", "django-axes", "django-csp"):
        assert name in pinned


def test_collectstatic_with_debug_off_hashes_every_file(tmp_path):
    env = dict(
        os.environ,
        DEBUG="0",
        SECRET_KEY="collectstatic-test",
        STATIC_ROOT=str(tmp_path / "static"),
        SLRWEB_VAR_DIR=str(tmp_path / "var"),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    manifest = (tmp_path / "static" / "staticfiles.json").read_text()
    for name in ("vendor/bootstrap.bundle.min.js", "vendor/bootstrap.min.css", "slrweb.js"):
        assert f'"{name}"' in manifest


def test_health_check_answers_without_login(db, client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.content == b"ok"


def test_an_unknown_page_is_our_styled_404_not_a_debug_page(db, client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    text = response.content.decode()
    assert "Page not found" in text and "Go to your reviews" in text
    assert 'class="navbar' in text and "Using the URLconf" not in text


def test_a_refused_page_is_our_styled_403(review, client_for):
    response = client_for("viewer").post(f"/r/{review.slug}/imports/", {})
    assert response.status_code == 403
    text = response.content.decode()
    assert "Not allowed" in text and "Ask the review's owner" in text


def test_an_expired_form_is_our_styled_csrf_page(db):
    response = Client(enforce_csrf_checks=True).post("/accounts/login/", {"username": "x"})
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()


def test_a_server_error_is_our_styled_500(db):
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    text = response.content.decode()
    assert "Something went wrong on the server" in text and "Reload the page" in text


@pytest.fixture
def default_queue():
    """Set the Celery app's default queue for one test (the conftest worker sets its own)."""
    saved = app.conf.task_default_queue

    def set_default_queue(name: str):
        app.conf.task_default_queue = name

    yield set_default_queue
    app.conf.task_default_queue = saved


@pytest.mark.parametrize(
    "task,queue",
    [
        ("screening.batch_import", "heavy"),
        ("screening.review_deduplicate", "heavy"),
        ("screening.ranking_train", "heavy"),
        ("screening.search_documents_fill", "heavy"),
        ("screening.funnel_refresh", "light"),
        ("screening.ping", "light"),
    ],
)
def test_tasks_are_routed_to_the_heavy_or_the_light_queue(task, queue, default_queue):
    default_queue("light")
    assert route_task(task, (), {}, {}) == {"queue": queue}


def test_a_private_default_queue_takes_every_task(default_queue):
    default_queue("slrweb-test-1234")
    assert route_task("screening.batch_import", (), {}, {}) == {"queue": "slrweb-test-1234"}


def compose_client() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


@pytest.mark.skipif(compose_client() is None, reason="no docker compose client installed")
def test_docker_compose_config_parses_and_requires_a_secret_key():
    client = compose_client()
    env = {key: value for key, value in os.environ.items() if key != "SECRET_KEY"}
    ok = subprocess.run(
        [*client, "config", "--quiet"],
        cwd=REPO_ROOT,
        env=dict(env, SECRET_KEY="from-env"),
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run(
        [*client, "config", "--quiet"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert missing.returncode != 0 and "set SECRET_KEY in .env" in missing.stderr


def test_the_embedded_sqlite_database_lets_readers_in_during_a_long_write(tmp_path):
    """`make run`'s SQLite file is in WAL mode: pages and the sweep read while an import's
    transaction writes, instead of waiting on the rollback journal's exclusive lock."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env.update(SLRWEB_VAR_DIR=str(tmp_path / "var"), SECRET_KEY="wal-test")
    (tmp_path / "var").mkdir()
    probe = (
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('PRAGMA journal_mode')\n"
        "    print(cursor.fetchone()[0])\n"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", probe],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "wal"
