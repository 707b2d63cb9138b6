"""Work a decision asks for that the reviewer need not wait for runs once the answer is sent.

The ranking's "is a training due?" check (and, a tenth of the time, the run it creates and the
task it sends) ran before the next study's panel went back: those decisions were the slowest
tenth of one reviewer's (docs/benchmarks.md). The decision is sent here through Django's WSGI
handler, as gunicorn calls it, with the session cookie and CSRF token of a signed-in page; the
server closing the response is what runs the check.
"""

import contextlib
import logging
import re

from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory
from django.urls import reverse

from screening.models import Decision, RankingRun, Stage
from screening.services.after_response import after_response

from .ranking_helpers import decide, studies_make

PANEL_FIELD = r'<input type="hidden" name="{}" value="([^"]+)">'


@contextlib.contextmanager
def _test_transaction_kept():
    """As Django's test client does: a request's start and end do not close the connection
    that holds the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _decision_environ(client, stage_url: str) -> dict:
    """What the page's decision form sends for the study on the panel, as a WSGI environ."""
    panel = client.get(stage_url).content.decode()
    fields = {
        name: re.search(PANEL_FIELD.format(name), panel).group(1) for name in ("study", "version")
    }
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', panel).group(1)
    cookies = "; ".join(f"{key}={morsel.value}" for key, morsel in client.cookies.items())
    request = RequestFactory().post(
        f"{stage_url}decide/",
        {**fields, "csrfmiddlewaretoken": token, "verdict": "include", "note": ""},
        HTTP_COOKIE=cookies,
        HTTP_HX_REQUEST="true",
    )
    return request.environ


def test_the_training_a_decision_makes_due_is_scheduled_after_the_answer_is_sent(
    review, cast, client_for, django_capture_on_commit_callbacks, monkeypatch
):
    # No task leaves the test: the run's row is what the check writes.
    monkeypatch.setattr("screening.services.ranking.task_enqueue", lambda *a, **k: True)
    stage = review.stages.get(is_entry=True)
    Stage.objects.filter(pk=stage.pk).update(queue_order=Stage.QueueOrder.PRIORITISED)
    studies = studies_make(review, relevant=3, irrelevant=4)
    for study in studies[:5]:
        decide(study, stage, cast["reviewer"], "include" if study.truth else "exclude")
    client = client_for("reviewer2")
    environ = _decision_environ(
        client, reverse("screening:screening_stage", args=[review.slug, stage.key])
    )
    statuses = []

    with _test_transaction_kept():
        with django_capture_on_commit_callbacks(execute=True):
            response = WSGIHandler()(environ, lambda status, headers: statuses.append(status))
            answer = b"".join(response).decode()
        assert statuses == ["200 OK"] and "Recorded: include" in answer
        # The decision is stored; the answer went without the check.
        assert Decision.objects.filter(reviewer=cast["reviewer2"], stage=stage).count() == 1
        assert not RankingRun.objects.exists()

        response.close()  # the server has written the answer
    run = RankingRun.objects.get()
    assert run.status == RankingRun.Status.PENDING and run.stage_id == stage.pk
    assert run.decisions_seen == 6


def test_work_after_a_response_that_fails_is_logged_and_the_next_request_is_answered(
    review, cast, client_for, caplog
):
    client = client_for("reviewer")

    def broken():
        raise RuntimeError("the ranking check broke")

    environ = RequestFactory().get(reverse("screening:screening_home", args=[review.slug])).environ
    environ["HTTP_COOKIE"] = "; ".join(f"{k}={m.value}" for k, m in client.cookies.items())
    with _test_transaction_kept():
        response = WSGIHandler()(environ, lambda *args: None)
        after_response(broken)
        with caplog.at_level(logging.ERROR, logger="screening.services.after_response"):
            response.close()
    assert "work after the response failed" in caplog.text
    assert "the ranking check broke" in caplog.text
    # The next request starts with nothing pending and is answered.
    assert client.get(reverse("screening:screening_home", args=[review.slug])).status_code == 200


def test_outside_a_request_the_work_runs_at_once():
    ran = []
    after_response(lambda: ran.append("now"))
    assert ran == ["now"]
