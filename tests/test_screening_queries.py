"""The number of SQL statements of one decision + next study (the screening page's htmx POST).

A correctness guard, not a timing: every decision of every reviewer pays these statements, so a
change that adds one (an N+1, a recount, a per-request write) fails here instead of showing up
as latency under a team. The on-commit work is counted too: the ranking area's "is a training
due?" check (2 statements here, where every verdict is exclude so no training is ever due) and,
on a resolution, the funnel request. Statements as the test database runs them: each
transaction shows as a SAVEPOINT and its RELEASE.
"""

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from screening.models import Decision, Resolution, ScreeningClaim

from .screening_helpers import exclusion_criteria, make_studies, stage

# Pinned: lower them when a change saves statements, never raise them without a reason.
# Before issue 17 the first cost 32 (the session was written on every request).
# Issue 17: the claim is two SQL statements (was four ORM ones), the ranking's due check one
# (was three), and the panel's figures (undo, mine, the exact "left for you" of issue 15, the
# form's version) one (was four), the deciding reviewer's own decision and the study's slots
# one (was two); a settling decision reads the stage's decisions with their reasons in one
# statement (was two: the decisions and their prefetched reasons). Then four round trips
# less (22 -> 18, 33 -> 29): the stage and its reasons in one read, the study read once (locked,
# by the id the form posted), the reviewer's role read with the slots, and the claim answering
# the claimed study as the panel shows it; then the claim ended in the slots' statement
# (18 -> 17, 29 -> 28).
FIRST_DECISION = 17  # the study still needs another reviewer's decision
SETTLING_DECISION = 28  # the second decision agrees: resolved, routed, funnel requested
# SQLite has no INSERT or DELETE in a WITH clause: the reviewer's claim is ended, and the next
# claimed study read, by a statement each of their own.
SQLITE_EXTRA = 2


def _pinned(count):
    return count if connection.vendor == "postgresql" else count + SQLITE_EXTRA


def _decide(client, review, study_id, verdict, capture_on_commit):
    with CaptureQueriesContext(connection) as queries, capture_on_commit(execute=True):
        answer = client.post(
            reverse("screening:screening_decide", args=[review.slug, "title"]),
            {"study": study_id, "version": 0, "verdict": verdict},
            HTTP_HX_REQUEST="true",
        )
    assert answer.status_code == 200, answer.content[:300]
    assert "Recorded:" in answer.content.decode()
    return answer, [q["sql"] for q in queries.captured_queries]


def _next_claimed(username):
    claim = ScreeningClaim.objects.filter(reviewer__username=username).latest("claimed_at")
    return claim.study_id


def test_decision_and_next_study_cost_a_fixed_number_of_statements(
    review, cast, django_capture_on_commit_callbacks
):
    exclusion_criteria(review, 3)
    # Prioritised, every study ranked: the claim reads the ranked queue first and finds one.
    title = stage(review)
    title.queue_order = "prioritised"
    title.save(update_fields=["queue_order"])
    make_studies(review, 12, priority=0.5)
    first, second = Client(), Client()
    first.force_login(cast["reviewer"])
    second.force_login(cast["reviewer2"])
    page = reverse("screening:screening_stage", args=[review.slug, "title"])
    first.get(page)
    second.get(page)

    counts = []
    for _ in range(4):
        study_id = _next_claimed("reviewer")
        answer, sql = _decide(
            first, review, study_id, "exclude", django_capture_on_commit_callbacks
        )
        counts.append(len(sql))
        # What was stored, and the reply already carries the next claimed study.
        assert Decision.objects.filter(
            study_id=study_id, reviewer=cast["reviewer"], verdict="exclude"
        ).exists()
        assert f'name="study" value="{_next_claimed("reviewer")}"' in answer.content.decode()
    assert counts == [_pinned(FIRST_DECISION)] * 4, counts

    # reviewer2's first study is one reviewer already excluded? Decide those until one settles.
    settled = None
    for _ in range(6):
        study_id = _next_claimed("reviewer2")
        already = Decision.objects.filter(study_id=study_id).exists()
        _answer, sql = _decide(
            second, review, study_id, "exclude", django_capture_on_commit_callbacks
        )
        if already:
            settled = (study_id, len(sql))
            break
    assert settled is not None
    assert Resolution.objects.filter(study_id=settled[0], verdict="exclude").exists()
    assert settled[1] == _pinned(SETTLING_DECISION), settled[1]
