"""The read-only API: tokens, membership scope, blind rules, paging, the report endpoints."""

import pytest
from django.urls import reverse

from screening.models import ApiToken, AuditEvent, Decision, Membership, Resolution, Study
from screening.services.funnel import funnel_compute
from screening.services.protocol import member_remove
from screening.services.reviews import review_create
from screening.services.tokens import api_token_create, api_token_revoke, token_digest

from .factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tokens(cast):
    return {name: api_token_create(user=user, name="script")[1] for name, user in cast.items()}


@pytest.fixture
def api_get(client):
    def get(path: str, token: str | None = None, **params):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        return client.get(f"/api/{path}", params, **headers)

    return get


def study(review, n: int, **fields) -> Study:
    entry = review.stages.get(is_entry=True)
    values = {"title": f"Study {n} on pipelines", "year": 2020, "current_stage": entry}
    return Study.objects.create(review=review, **(values | fields))


def test_no_token_or_a_wrong_or_revoked_token_is_401(review, cast, tokens, api_get):
    assert api_get(f"reviews/{review.slug}").status_code == 401
    assert api_get(f"reviews/{review.slug}", "slrw_not-a-token").status_code == 401
    token = ApiToken.objects.get(user=cast["viewer"])
    api_token_revoke(user=cast["viewer"], token_id=token.pk)
    assert api_get(f"reviews/{review.slug}", tokens["viewer"]).status_code == 401
    # A session login does not open the API either: scripts use tokens.
    assert api_get("reviews").status_code == 401


def test_only_the_users_reviews_are_listed_and_reachable(review, cast, tokens, api_get):
    review_create(slug="other-review", title="Other", owner=UserFactory(username="stranger"))
    answer = api_get("reviews", tokens["reviewer"])
    assert answer.status_code == 200
    assert answer.json() == [{"slug": "test-review", "title": "A test review", "role": "reviewer"}]
    assert api_get(f"reviews/{review.slug}", tokens["outsider"]).status_code == 404
    assert api_get(f"reviews/{review.slug}/studies", tokens["outsider"]).status_code == 404
    assert api_get("reviews/no-such-review", tokens["owner"]).status_code == 404
    detail = api_get(f"reviews/{review.slug}", tokens["viewer"]).json()
    assert (detail["role"], detail["blind_mode"]) == ("viewer", True)
    assert [stage["key"] for stage in detail["stages"]] == list(
        review.stages.values_list("key", flat=True)
    )


def test_a_review_the_user_left_is_no_longer_reached_by_the_token(review, cast, tokens, api_get):
    assert api_get(f"reviews/{review.slug}", tokens["reviewer2"]).status_code == 200
    membership = Membership.objects.get(review=review, user=cast["reviewer2"])
    member_remove(review=review, actor=cast["owner"], membership=membership)
    assert api_get(f"reviews/{review.slug}", tokens["reviewer2"]).status_code == 404
    assert api_get(f"reviews/{review.slug}/decisions", tokens["reviewer2"]).status_code == 404
    assert api_get("reviews", tokens["reviewer2"]).json() == []


def test_a_reviewer_never_sees_another_reviewers_decisions(review, cast, tokens, api_get):
    first = study(review, 1)
    entry = first.current_stage
    Decision.objects.create(
        review=review, study=first, stage=entry, reviewer=cast["reviewer"], verdict="include"
    )
    Decision.objects.create(
        review=review,
        study=first,
        stage=entry,
        reviewer=cast["reviewer2"],
        verdict="exclude",
        note="secret of reviewer2",
    )
    mine = api_get(f"reviews/{review.slug}/decisions", tokens["reviewer"])
    assert mine.status_code == 200
    assert mine.json()["count"] == 1
    assert mine.json()["items"][0] | {"created_at": None, "updated_at": None} == {
        "study": first.pk,
        "stage": entry.key,
        "verdict": "include",
        "reasons": [],
        "note": "",
        "created_at": None,
        "updated_at": None,
    }
    # Nothing of reviewer2's verdict anywhere the reviewer can ask, owner and viewer alike.
    for name in ("reviewer", "owner", "viewer"):
        for path in ("decisions", "resolutions", "studies"):
            body = api_get(f"reviews/{review.slug}/{path}", tokens[name]).content.decode()
            assert "secret of reviewer2" not in body
            assert "exclude" not in body
    assert api_get(f"reviews/{review.slug}/decisions", tokens["viewer"]).json()["count"] == 0


def test_resolutions_are_served_without_the_decisions_behind_them(review, cast, tokens, api_get):
    first = study(review, 1)
    Resolution.objects.create(
        review=review,
        study=first,
        stage=first.current_stage,
        verdict="exclude",
        method="adjudication",
        decided_by=cast["owner"],
        note="off topic",
    )
    answer = api_get(f"reviews/{review.slug}/resolutions", tokens["viewer"]).json()
    assert answer["count"] == 1
    item = answer["items"][0]
    assert {k: item[k] for k in ("study", "verdict", "method", "decided_by", "note")} == {
        "study": first.pk,
        "verdict": "exclude",
        "method": "adjudication",
        "decided_by": "owner",
        "note": "off topic",
    }
    assert "decisions" not in item


def test_studies_are_paged_and_filtered(review, cast, tokens, api_get):
    for n in range(7):
        study(review, n, year=2019 + n % 2, abstract="uses kubeflow" if n == 3 else "")
    full_text = review.stages.get(key="full_text")
    study(review, 99, title="Included one", current_stage=full_text, outcome="included")
    path = f"reviews/{review.slug}/studies"
    page = api_get(path, tokens["viewer"], page_size=3).json()
    assert page["count"] == 8 and len(page["items"]) == 3
    last = api_get(path, tokens["viewer"], page_size=3, page=3).json()
    assert [item["title"] for item in last["items"]] == ["Study 6 on pipelines", "Included one"]
    assert api_get(path, tokens["viewer"], page_size=3, page=4).json()["items"] == []
    # Studies 1, 3 and 5, and the included one.
    assert api_get(path, tokens["viewer"], year=2020).json()["count"] == 4
    assert api_get(path, tokens["viewer"], status="included").json()["items"][0]["stage"] == (
        "full_text"
    )
    assert api_get(path, tokens["viewer"], stage="full_text").json()["count"] == 1
    found = api_get(path, tokens["viewer"], search="KUBEFLOW").json()
    assert [item["title"] for item in found["items"]] == ["Study 3 on pipelines"]
    assert api_get(path, tokens["viewer"], status="nonsense").status_code == 422
    assert api_get(path, tokens["viewer"], page=0).status_code == 422


def test_funnel_table1_and_prisma_s(review, cast, tokens, api_get):
    # The owner: in blind mode the funnel is hidden from reviewers and viewers
    # (tests/test_reports_blind.py).
    funnel = api_get(f"reviews/{review.slug}/funnel", tokens["owner"])
    assert funnel.status_code == 409
    assert "No funnel has been computed" in funnel.json()["detail"]
    funnel_compute(review=review)
    funnel = api_get(f"reviews/{review.slug}/funnel", tokens["owner"]).json()
    assert funnel["database_results"] == 0 and funnel["new_studies"] == 0
    table1 = api_get(f"reviews/{review.slug}/table1", tokens["viewer"]).json()
    assert table1 == {"sources": [], "rows": [], "totals": [], "reported": 0, "imported": 0}
    items = api_get(f"reviews/{review.slug}/prisma-s", tokens["viewer"]).json()["items"]
    assert [item["number"] for item in items] == list(range(1, 17))
    assert api_get(f"reviews/{review.slug}/prisma-s", tokens["outsider"]).status_code == 404


def test_openapi_schema_is_served(client):
    schema = client.get("/api/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/reviews/{slug}/studies" in paths
    assert schema.json()["components"]["securitySchemes"]["TokenAuth"]["scheme"] == "bearer"
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert b"cdn." not in docs.content


# The token page ---------------------------------------------------------------------------------


def test_a_token_is_shown_once_and_only_its_digest_stored(cast, client_for):
    client = client_for("reviewer")
    answer = client.post(reverse("api_tokens"), {"name": "Kappa dashboard"})
    assert answer.status_code == 200
    raw = answer.context["raw"]
    assert raw.startswith("slrw_") and raw.encode() in answer.content
    stored = ApiToken.objects.get(user=cast["reviewer"])
    assert (stored.name, stored.digest, stored.revoked_at) == (
        "Kappa dashboard",
        token_digest(raw),
        None,
    )
    assert raw not in str(ApiToken.objects.filter(pk=stored.pk).values().get())
    assert AuditEvent.objects.filter(action="api_token.create", actor=cast["reviewer"]).exists()
    again = client.get(reverse("api_tokens"))
    assert raw.encode() not in again.content and b"Kappa dashboard" in again.content
    other = client_for("reviewer2").get(reverse("api_tokens"))
    assert b"Kappa dashboard" not in other.content


def test_a_second_live_token_with_the_same_name_is_refused(cast, client_for):
    client = client_for("reviewer")
    assert client.post(reverse("api_tokens"), {"name": "laptop"}).status_code == 200
    again = client.post(reverse("api_tokens"), {"name": "laptop"})
    assert again.status_code == 422
    assert b"already have a live token named" in again.content
    assert ApiToken.objects.filter(user=cast["reviewer"]).count() == 1
    assert client.post(reverse("api_tokens"), {"name": "  "}).status_code == 422


def test_revoking_stops_the_token_and_only_its_owner_may(review, cast, client_for, api_get):
    token, raw = api_token_create(user=cast["reviewer"], name="laptop")
    assert api_get(f"reviews/{review.slug}", raw).status_code == 200
    url = reverse("api_token_revoke", args=[token.pk])
    assert client_for("reviewer2").post(url).status_code == 404
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None
    answer = client_for("reviewer").post(url)
    assert answer.status_code == 302
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert api_get(f"reviews/{review.slug}", raw).status_code == 401
    assert AuditEvent.objects.filter(action="api_token.revoke", object_id=str(token.pk)).exists()
    assert client_for("reviewer").get(url).status_code == 405


def test_the_token_page_needs_a_login(client):
    assert client.get(reverse("api_tokens")).status_code == 302
