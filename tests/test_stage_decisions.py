"""The decisions per (stage, reviewer), as the PostgreSQL triggers keep them (migration 0016),
equal a recount after every kind of write: decisions recorded, changed, undone, moved to another
stage or reviewer, their study deleted, merged and unmerged, a review restored, the deltas
folded. And the panel, read from them, shows "Mine", "Team" and Undo as they are, to the
deciding reviewer and another, on either database."""

import json
import re
from collections import Counter

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from screening.models import Decision, Stage
from screening.services import backup
from screening.services.dedup import studies_merge, study_unmerge
from screening.services.screening import decision_record, decision_undo, stage_decisions_compact

from .screening_helpers import make_studies, stage

pytestmark = pytest.mark.django_db


def _recounted(stages: list[Stage]) -> Counter:
    return Counter(Decision.objects.filter(stage__in=stages).values_list("stage_id", "reviewer_id"))


def _kept(stages: list[Stage]) -> Counter:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT stage_id, reviewer_id, SUM(delta) FROM screening_stage_decisions"
            " WHERE stage_id = ANY(%s) GROUP BY stage_id, reviewer_id HAVING SUM(delta) <> 0",
            [[s.pk for s in stages]],
        )
        return Counter({(stage_id, reviewer): n for stage_id, reviewer, n in cursor.fetchall()})


def _assert_exact(review) -> None:
    stages = list(Stage.objects.filter(review=review))
    assert _kept(stages) == _recounted(stages)


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite counts the decisions (no kept counts)")


def _decide(review, study, user, verdict="include", key="title", **kw):
    return decision_record(
        review=review, study=study, stage=stage(review, key), reviewer=user, verdict=verdict, **kw
    )


def test_counts_follow_every_write(postgres_only, review, cast):
    reviewer, reviewer2 = cast["reviewer"], cast["reviewer2"]
    studies = make_studies(review, 8)
    for study in studies[:5]:
        _decide(review, study, reviewer)
    _decide(review, studies[0], reviewer2, "exclude")
    _decide(review, studies[5], reviewer2)
    _assert_exact(review)

    _decide(review, studies[1], reviewer, "exclude", seen_version=1)  # changed: counts stay
    decision_undo(
        review=review, stage=stage(review), reviewer=reviewer, study=studies[1], seen_version=2
    )
    _assert_exact(review)

    Decision.objects.filter(study=studies[2], reviewer=reviewer).update(reviewer=reviewer2)
    Decision.objects.filter(study=studies[3]).update(stage=stage(review, "abstract"))
    Decision.objects.filter(study=studies[4], reviewer=reviewer).update(study=studies[6])
    _assert_exact(review)

    studies[0].delete()  # its decisions go with it
    _assert_exact(review)

    merge = studies_merge(review=review, first=studies[5], second=studies[6], user=cast["owner"])
    _assert_exact(review)
    study_unmerge(review=review, merge=merge, user=cast["owner"])
    _assert_exact(review)

    assert stage_decisions_compact() > 0
    _assert_exact(review)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM screening_stage_decisions WHERE stage_id = %s",
            [stage(review).pk],
        )
        assert cursor.fetchone()[0] == 2  # one row per reviewer

    restored = backup.review_import(
        data=json.loads(json.dumps(backup.review_export(review=review))), slug="copy"
    )
    _assert_exact(restored)  # restored by COPY: the triggers counted it
    assert (
        sum(_kept(list(restored.stages.all())).values())
        == Decision.objects.filter(review=review).count()
    )


def _figure(content: str, name: str) -> int:
    found = re.search(rf'data-progress="{name}">([\d,]+)<', content)
    assert found, name
    return int(found.group(1).replace(",", ""))


def _undo_study(content: str) -> int | None:
    found = re.search(r'name="study" value="(\d+)"><input type="hidden" name="version"', content)
    return int(found.group(1)) if found else None


def test_mine_team_and_undo_on_the_panel_after_a_reload(review, cast):
    """Each decision moves "Mine" for its reviewer and "Team" for everyone at once (no figure
    held back by a cache), and Undo offers the reviewer's own latest decision."""
    studies = make_studies(review, 5)
    first, second = Client(), Client()
    first.force_login(cast["reviewer"])
    second.force_login(cast["reviewer2"])
    page = reverse("screening:screening_stage", args=[review.slug, "title"])

    def seen(client):
        content = client.get(page).content.decode()
        return _figure(content, "mine"), _figure(content, "team"), _undo_study(content)

    assert seen(first) == (0, 0, None) and seen(second) == (0, 0, None)
    _decide(review, studies[0], cast["reviewer"])
    _decide(review, studies[1], cast["reviewer"])
    assert seen(first) == (2, 2, studies[1].pk)
    assert seen(second) == (0, 2, None)
    _decide(review, studies[1], cast["reviewer2"])  # agreement: settled, still undoable
    assert seen(first) == (2, 3, studies[1].pk)
    assert seen(second) == (1, 3, studies[1].pk)
    _decide(review, studies[0], cast["reviewer"], "exclude", seen_version=1)  # changed, not new
    assert seen(first) == (2, 3, studies[1].pk)
    decision_undo(
        review=review,
        stage=stage(review),
        reviewer=cast["reviewer"],
        study=studies[1],
        seen_version=1,
    )
    assert seen(first) == (1, 2, studies[0].pk)
    assert seen(second) == (1, 2, studies[1].pk)
