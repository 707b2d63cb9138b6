"""Settings, access helper, the review list, the worker round trip."""

from pathlib import Path

import pytest
from django.http import HttpRequest
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


def test_review_create_needs_staff_when_the_setting_says_so(review, client_for, cast, settings):
    settings.SLRWEB_REVIEW_CREATION = "staff"
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


# ----- demo review and management commands ---------------------------------------------------


def load_demo():
    import io
    import json

    from django.core.management import call_command

    out, err = io.StringIO(), io.StringIO()
    call_command("load_demo", "--bare", stdout=out, stderr=err)
    return json.loads(out.getvalue()), err.getvalue()


def test_load_demo_twice_leaves_one_review_with_table1(db, client):
    first, _ = load_demo()
    second, _ = load_demo()
    assert first == second
    assert first["review"] == "mlops-slr"
    assert [(u["username"], u["role"]) for u in first["users"]] == [
        ("demo-owner", "owner"),
        ("demo-reviewer1", "reviewer"),
        ("demo-reviewer2", "reviewer"),
    ]
    assert Review.objects.filter(slug="mlops-slr").count() == 1
    review = Review.objects.get(slug="mlops-slr")
    assert list(review.research_questions.values_list("code", flat=True)) == [
        f"RQ{i}" for i in range(1, 6)
    ]
    assert review.research_questions.get(code="RQ4").theme == "MLOps Tools"
    codes = list(review.criteria.values_list("code", flat=True))
    assert [c for c in codes if c.startswith("IC")] == [f"IC{i}" for i in range(1, 7)]
    assert [c for c in codes if c.startswith("EC")] == [f"EC{i}" for i in range(1, 7)]
    assert review.quality_criteria.count() == 5
    assert (review.quality_scale, review.quality_threshold) == ("yes_no", None)
    assert review.sources.count() == 4 and review.search_strings.count() == 10
    runs = review.search_runs.all()
    assert runs.count() == 40 and {r.run_on.isoformat() for r in runs} == {"2021-07-31"}

    owner = first["users"][0]
    # django-axes checks every login against its lockouts, so it needs the request.
    assert client.login(
        request=HttpRequest(), username=owner["username"], password=owner["password"]
    )
    html = client.get(reverse("screening:protocol_detail", args=["mlops-slr"])).content.decode()
    totals = html.split("<tfoot", 1)[1]
    for figure in ("602", "90", "797", "416"):
        assert f'<td class="text-end" data-total>{figure}</td>' in totals
    assert '<td class="text-end" id="table1-grand-total">1,905</td>' in totals


def test_load_demo_never_resets_a_changed_password(db, monkeypatch):
    from django.contrib.auth import get_user_model

    monkeypatch.setenv("DEMO_PASSWORD", "another-demo-secret")
    first, _ = load_demo()
    assert {u["password"] for u in first["users"]} == {"another-demo-secret"}
    user = get_user_model().objects.get(username="demo-reviewer1")
    user.set_password("mine-now")
    user.save()
    second, warnings = load_demo()
    reviewer = next(u for u in second["users"] if u["username"] == "demo-reviewer1")
    assert reviewer["password"] is None
    assert "demo-reviewer1" in warnings
    user.refresh_from_db()
    assert user.check_password("mine-now")


def test_create_review_command(db):
    import io
    import json

    from django.core.management import CommandError, call_command

    from tests.factories import UserFactory

    UserFactory(username="alice")
    out = io.StringIO()
    call_command(
        "create_review", "--slug", "new-slr", "--title", "New", "--owner", "alice", stdout=out
    )
    assert json.loads(out.getvalue()) == {"review": "new-slr"}
    assert Review.objects.get(slug="new-slr").memberships.get().user.username == "alice"
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_review", "--slug", "new-slr", "--title", "Again", stdout=io.StringIO())
    with pytest.raises(CommandError, match="No user named"):
        call_command("create_review", "--slug", "x", "--title", "X", "--owner", "bob")
    with pytest.raises(CommandError, match="lowercase"):
        call_command("create_review", "--slug", "Bad Slug", "--title", "X")


@pytest.mark.parametrize(
    "name,args", [("review_list", []), ("review_create", []), ("review_home", ["test-review"])]
)
def test_review_views_need_login(review, client, name, args):
    response = client.get(reverse(f"screening:{name}", args=args))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_review_views_wrong_methods(review, client_for):
    client = client_for("owner")
    assert client.put(reverse("screening:review_create")).status_code == 405
    assert client.post(reverse("screening:review_home", args=[review.slug])).status_code == 405


def test_review_create_bad_slug_saves_nothing(review, client_for, cast):
    cast["owner"].is_staff = True
    cast["owner"].save()
    response = client_for("owner").post(
        reverse("screening:review_create"), {"slug": "Not a slug!", "title": ""}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "is-invalid" in html and "This field is required." in html
    assert Review.objects.count() == 1
