"""Settings, access helper, the review list, the worker round trip, docker-compose."""

from pathlib import Path

import pytest
import yaml
from django.urls import reverse

from screening.models import AuditEvent, Review, Stage
from screening.tasks.core import ping

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_review_create_makes_seed_stages_and_owner(review, cast):
    stages = {s.key: s for s in review.stages.all()}
    assert list(stages) == ["title", "abstract", "full_text"]
    assert stages["title"].is_entry
    assert (stages["title"].route_include, stages["title"].route_uncertain) == (
        "full_text",
        "abstract",
    )
    assert stages["abstract"].route_uncertain == "full_text"
    assert stages["full_text"].route_include == Stage.INCLUDED
    assert all(s.reviewers_required == 2 for s in stages.values())
    assert review.blind_mode is True
    assert review.memberships.get(user=cast["owner"]).role == "owner"
    assert AuditEvent.objects.filter(review=review, action="review.create").exists()


@pytest.mark.parametrize("username,status", [("owner", 302), ("viewer", 302), ("outsider", 404)])
def test_review_home_access(review, client_for, username, status):
    response = client_for(username).get(reverse("screening:review_home", args=[review.slug]))
    assert response.status_code == status


def test_anonymous_is_sent_to_login(review, client):
    url = reverse("screening:protocol_detail", args=[review.slug])
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_review_list_shows_only_my_reviews(review, client_for, db):
    Review.objects.create(slug="secret", title="Somebody else's review")
    response = client_for("reviewer").get(reverse("screening:review_list"))
    assert response.status_code == 200
    assert review.title in response.content.decode()
    assert "Somebody else" not in response.content.decode()


def test_review_create_needs_staff(review, client_for, cast):
    url = reverse("screening:review_create")
    assert client_for("owner").get(url).status_code == 403
    cast["owner"].is_staff = True
    cast["owner"].save()
    response = client_for("owner").post(url, {"slug": "new-one", "title": "New"})
    assert response.status_code == 302
    assert Review.objects.get(slug="new-one").memberships.get().role == "owner"


def test_review_create_rejects_duplicate_slug(review, client_for, cast):
    cast["owner"].is_staff = True
    cast["owner"].save()
    response = client_for("owner").post(
        reverse("screening:review_create"), {"slug": review.slug, "title": "Again"}
    )
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert Review.objects.filter(slug=review.slug).count() == 1


def test_review_list_wrong_method(client_for, review):
    assert client_for("owner").post(reverse("screening:review_list")).status_code == 405


@pytest.mark.worker
def test_task_round_trip_through_real_worker(celery_worker, review_and_cast):
    review, _ = review_and_cast
    result = ping.delay(review.pk)
    assert result.get(timeout=30) == {"review": {"slug": review.slug, "title": review.title}}


def test_docker_compose_names_four_services_with_their_commands():
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"db", "redis", "web", "worker"}
    assert services["db"]["image"].startswith("postgres")
    assert services["redis"]["image"].startswith("redis")
    web_command = " ".join(services["web"]["command"])
    assert "migrate" in web_command and "gunicorn" in web_command
    assert "celery" in " ".join(services["worker"]["command"])
    for name in ("web", "worker"):
        environment = services[name]["environment"]
        assert environment["DATABASE_URL"].startswith("postgres://")
        assert environment["CELERY_BROKER_URL"].startswith("redis://")
