"""Stopping a stage on the BUSCAR rule: evidence stored, remaining studies excluded
automatically (funnel `excluded_automatic`), audited, reversible; owner only."""

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from screening.models import AuditEvent, AuditSample, RankingSettings, StageStop, Study
from screening.selectors import ranking as ranking_selectors
from screening.selectors.reports import funnel_box_rows, funnel_live
from screening.services import backup
from screening.services import ranking as ranking_service

from .ranking_helpers import decide, resolve, screened_until_met
from .screening_helpers import queue_ordered


def stop_url(review):
    return reverse("screening:ranking_stop", args=[review.slug])


def progress_url(review):
    return reverse("screening:ranking_progress", args=[review.slug])


def test_stop_excludes_the_remaining_studies_with_the_evidence(review, cast):
    stage, remaining = screened_until_met(review, cast["reviewer"])
    stop = ranking_service.stage_stop(review=review, stage=stage, actor=cast["owner"])
    stored = StageStop.objects.get(pk=stop.pk)
    assert (stored.rule, stored.recall_target, stored.confidence) == ("buscar", 0.95, 0.95)
    assert stored.p_value == pytest.approx(100 * 99 * 98 / (300 * 299 * 298))
    assert (stored.screened, stored.relevant_found, stored.records) == (240, 40, 340)
    assert stored.excluded == 100 and stored.stopped_by == cast["owner"]
    assert set(stored.study_ids) == {s.pk for s in remaining}
    assert Study.objects.filter(outcome="excluded_automatic").count() == 100
    event = AuditEvent.objects.get(action="stage.stop")
    assert event.after["excluded"] == 100 and event.after["p_value"] == stored.p_value
    funnel = funnel_live(review=review)
    assert funnel["excluded_automatic"] == 100
    assert funnel["records_screened"] == 240
    assert funnel_box_rows(review=review, box="excluded_automatic").count() == 100
    assert funnel_box_rows(review=review, box="records_screened").count() == 240


def test_undo_puts_the_studies_back_in_the_queue(review, cast):
    stage, remaining = screened_until_met(review, cast["reviewer"])
    first = ranking_service.stage_stop(review=review, stage=stage, actor=cast["owner"])
    stop = ranking_service.stage_stop_undo(
        review=review, stage=stage, actor=cast["owner"], seen_stop=first.pk
    )
    assert StageStop.objects.get(pk=stop.pk).undone_by == cast["owner"]
    waiting = Study.objects.filter(outcome="screening", current_stage=stage).exclude(
        resolutions__stage=stage
    )
    assert set(waiting.values_list("pk", flat=True)) == {s.pk for s in remaining}
    assert funnel_live(review=review)["excluded_automatic"] == 0
    assert funnel_live(review=review)["records_screened"] == 340
    assert AuditEvent.objects.get(action="stage.stop_undo").after == {"restored": 100}
    # Stopping again after an undo is allowed (a new stop with fresh evidence).
    again = ranking_service.stage_stop(review=review, stage=stage, actor=cast["owner"])
    assert again.pk != stop.pk and StageStop.objects.filter(undone_at__isnull=True).count() == 1


def test_stop_refused_while_the_rule_is_not_met(review, cast):
    stage, _ = screened_until_met(review, cast["reviewer"], irrelevant_after=50)
    with pytest.raises(ValidationError, match="not met"):
        ranking_service.stage_stop(review=review, stage=stage, actor=cast["owner"])
    assert not StageStop.objects.exists()
    assert not Study.objects.filter(outcome="excluded_automatic").exists()
    assert not AuditEvent.objects.filter(action="stage.stop").exists()


def test_a_study_one_reviewer_has_decided_is_not_excluded_automatically(review, cast):
    stage, remaining = screened_until_met(review, cast["reviewer"])
    decide(remaining[0], stage, cast["reviewer2"], "include")  # awaiting a second reviewer
    stop = ranking_service.stage_stop(review=review, stage=stage, actor=cast["owner"])
    assert stop.excluded == 99
    assert Study.objects.get(pk=remaining[0].pk).outcome == "screening"


def test_stop_twice_and_undo_without_stop_are_refused(review, cast):
    stage, _ = screened_until_met(review, cast["reviewer"])
    with pytest.raises(ValidationError, match="not stopped"):
        ranking_service.stage_stop_undo(review=review, stage=stage, actor=cast["owner"])
    ranking_service.stage_stop(review=review, stage=stage, actor=cast["owner"])
    with pytest.raises(ValidationError, match="already stopped"):
        ranking_service.stage_stop(review=review, stage=stage, actor=cast["owner"])
    assert StageStop.objects.count() == 1


def test_only_the_entry_stage_can_stop(review, cast):
    screened_until_met(review, cast["reviewer"])
    abstract = review.stages.get(key="abstract")
    with pytest.raises(ValidationError, match="first screening stage"):
        ranking_service.stage_stop(review=review, stage=abstract, actor=cast["owner"])


def test_the_stage_target_and_confidence_drive_the_rule(review, cast):
    stage, _ = screened_until_met(review, cast["reviewer"])
    RankingSettings.objects.update_or_create(stage=stage, defaults={"confidence": 0.99})
    with pytest.raises(ValidationError, match="not met"):  # p = 0.036 is not below 0.01
        ranking_service.stage_stop(review=review, stage=stage, actor=cast["owner"])


# --- views ------------------------------------------------------------------------------------


def test_panel_shows_the_live_criterion(review, cast, client_for):
    screened_until_met(review, cast["reviewer"])
    html = client_for("reviewer").get(progress_url(review)).content.decode()
    assert 'data-testid="stop-screened">240 of 340<' in html
    assert 'data-testid="stop-relevant">40<' in html
    assert 'data-testid="stop-p-value">0.0363<' in html
    assert "met</strong>: the stage may stop" in html
    assert 'data-testid="stop-stage"' not in html  # only the owner may stop
    assert (
        'data-testid="stop-stage"' in client_for("owner").get(progress_url(review)).content.decode()
    )


def test_owner_stops_and_undoes_through_the_panel(review, cast, client_for, htmx_headers):
    screened_until_met(review, cast["reviewer"])
    client = client_for("owner")
    response = client.post(stop_url(review), {"stage": "title"}, **htmx_headers)
    assert response.status_code == 200
    assert "100 unscreened studies are excluded" in response.content.decode()
    assert Study.objects.filter(outcome="excluded_automatic").count() == 100
    # After a reload, as another member: the stop is shown.
    other = Client()
    other.force_login(cast["reviewer"])
    html = other.get(progress_url(review)).content.decode()
    assert 'data-testid="stop-in-force"' in html and "by owner" in html
    assert 'data-testid="stop-screened">240 of 340<' in html  # the excluded still count
    stop = StageStop.objects.get()
    response = client.post(
        stop_url(review), {"stage": "title", "undo": "1", "version": stop.pk}, **htmx_headers
    )
    assert response.status_code == 200
    assert not Study.objects.filter(outcome="excluded_automatic").exists()


def test_stop_refused_answers_400_with_the_reason(review, cast, client_for, htmx_headers):
    screened_until_met(review, cast["reviewer"], irrelevant_after=50)
    response = client_for("owner").post(stop_url(review), {"stage": "title"}, **htmx_headers)
    assert response.status_code == 400
    assert "The stopping rule is not met" in response.content.decode()
    assert not StageStop.objects.exists()


def test_stop_access_and_bad_input(review, cast, client, client_for):
    screened_until_met(review, cast["reviewer"])
    response = client.post(stop_url(review), {"stage": "title"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert client_for("outsider").post(stop_url(review), {"stage": "title"}).status_code == 404
    assert client_for("viewer").post(stop_url(review), {"stage": "title"}).status_code == 403
    assert client_for("reviewer").post(stop_url(review), {"stage": "title"}).status_code == 403
    assert client_for("owner").get(stop_url(review)).status_code == 405
    response = client_for("owner").post(stop_url(review), {"stage": "nope"})
    assert response.status_code == 400 and "no stage" in response.content.decode()
    assert not StageStop.objects.exists()


def test_reports_page_offers_the_methods_sentence_while_the_stop_is_in_force(
    review, cast, client_for
):
    stage, _ = screened_until_met(review, cast["reviewer"])
    url = reverse("screening:reports_home", args=[review.slug])
    # The owner: in blind mode the sentence's counts are hidden from reviewers and viewers.
    assert "stopping-methods-sentence" not in client_for("owner").get(url).content.decode()
    stop = ranking_service.stage_stop(review=review, stage=stage, actor=cast["owner"])
    html = " ".join(client_for("owner").get(url).content.decode().split())
    assert "BUSCAR stopping criterion (Callaghan and Mueller-Hansen 2020)" in html
    assert "after 240 of 340 records had been screened and 40 relevant records found" in html
    assert "recall was below 0.95 was rejected at a confidence level of 0.95 (p = 0.0363" in html
    assert "The remaining 100 records were not screened" in html
    ranking_service.stage_stop_undo(
        review=review, stage=stage, actor=cast["owner"], seen_stop=stop.pk
    )
    assert "stopping-methods-sentence" not in client_for("owner").get(url).content.decode()


# --- random audit sample ----------------------------------------------------------------------


def sample_url(review):
    return reverse("screening:ranking_audit_sample", args=[review.slug])


def test_audit_sample_goes_first_and_keeps_its_place_through_retraining(review, cast):
    stage, remaining = screened_until_met(review, cast["reviewer"])
    sample = ranking_service.audit_sample_draw(
        review=review, stage=stage, actor=cast["owner"], size=10
    )
    sampled = set(AuditSample.objects.get(pk=sample.pk).study_ids)
    assert len(sampled) == 10 and sampled <= {s.pk for s in remaining}
    assert (sample.size, sample.population) == (10, 100)
    assert AuditEvent.objects.get(action="ranking.audit_sample").after["size"] == 10
    run = ranking_service.ranking_schedule_if_due(review=review, stage=stage, force=True)
    assert ranking_service.ranking_run_execute(run_id=run.pk).status == "done"
    queue = queue_ordered([s.pk for s in remaining], stage)
    assert set(queue[:10]) == sampled


def test_audit_sample_result_is_part_of_the_stop_evidence(review, cast):
    stage, _ = screened_until_met(review, cast["reviewer"])
    sample = ranking_service.audit_sample_draw(
        review=review, stage=stage, actor=cast["owner"], size=5
    )
    first, second = Study.objects.filter(pk__in=sample.study_ids)[:2]
    for study, verdict in ((first, "include"), (second, "exclude")):
        decide(study, stage, cast["reviewer"], verdict)
        resolve(study, stage, verdict)
    result = ranking_selectors.audit_sample_result(review=review, stage=stage)
    assert (result.size, result.screened, result.relevant) == (5, 2, 1)
    # The late include weakens the evidence (p = 0.104): the owner accepts a lower confidence.
    RankingSettings.objects.update_or_create(stage=stage, defaults={"confidence": 0.8})
    stop = ranking_service.stage_stop(review=review, stage=stage, actor=cast["owner"])
    stored = StageStop.objects.get(pk=stop.pk)
    assert (stored.audit_sample_size, stored.audit_sample_screened) == (5, 2)
    assert stored.audit_sample_relevant == 1
    assert AuditEvent.objects.get(action="stage.stop").after["audit_sample_relevant"] == 1


def test_audit_sample_bad_requests_write_nothing(review, cast):
    stage, _ = screened_until_met(review, cast["reviewer"])
    with pytest.raises(ValidationError, match="Only 100 studies"):
        ranking_service.audit_sample_draw(review=review, stage=stage, actor=cast["owner"], size=101)
    ranking_service.audit_sample_draw(review=review, stage=stage, actor=cast["owner"], size=3)
    with pytest.raises(ValidationError, match="already has"):
        ranking_service.audit_sample_draw(review=review, stage=stage, actor=cast["owner"], size=3)
    assert AuditSample.objects.count() == 1
    assert AuditEvent.objects.filter(action="ranking.audit_sample").count() == 1


def test_audit_sample_through_the_panel_owner_only(review, cast, client_for, htmx_headers):
    screened_until_met(review, cast["reviewer"])
    for role, status in (("outsider", 404), ("viewer", 403), ("reviewer", 403)):
        response = client_for(role).post(sample_url(review), {"stage": "title", "size": "5"})
        assert response.status_code == status
    response = client_for("owner").post(sample_url(review), {"stage": "title", "size": "x"})
    assert response.status_code == 400 and not AuditSample.objects.exists()
    response = client_for("owner").post(
        sample_url(review), {"stage": "title", "size": "5"}, **htmx_headers
    )
    assert response.status_code == 200
    assert "5 of 100 unscreened studies drawn at random" in response.content.decode()
    html = client_for("owner").get(progress_url(review)).content.decode()
    assert "0 of 5 sampled studies screened" in html
    # Reviewers are not shown the sample, so they cannot tell which studies are in it.
    as_reviewer = client_for("reviewer").get(progress_url(review)).content.decode()
    assert "sampled studies" not in as_reviewer


def test_undo_from_a_stale_page_is_refused_then_applied_on_request(review, cast, client_for):
    stage, _ = screened_until_met(review, cast["reviewer"])
    seen = ranking_service.stage_stop(review=review, stage=stage, actor=cast["owner"])
    # Another tab undoes that stop and stops the stage again.
    ranking_service.stage_stop_undo(
        review=review, stage=stage, actor=cast["owner"], seen_stop=seen.pk
    )
    current = ranking_service.stage_stop(review=review, stage=stage, actor=cast["owner"])
    client = client_for("owner")
    data = {"stage": "title", "undo": "1", "version": str(seen.pk)}
    response = client.post(stop_url(review), data)
    assert response.status_code == 409
    assert "changed since you opened it" in response.content.decode()
    assert StageStop.objects.get(pk=current.pk).undone_at is None
    assert Study.objects.filter(outcome="excluded_automatic").count() == 100
    forced = client.post(stop_url(review), {**data, "version": str(current.pk), "force": "1"})
    assert forced.status_code == 302
    assert StageStop.objects.get(pk=current.pk).undone_by == cast["owner"]
    assert not Study.objects.filter(outcome="excluded_automatic").exists()
    assert AuditEvent.objects.filter(action="stage.stop_undo.overwrite").count() == 1


def test_a_restored_backup_keeps_the_stop_and_can_undo_it(review, cast):
    stage, remaining = screened_until_met(review, cast["reviewer"])
    ranking_service.audit_sample_draw(review=review, stage=stage, actor=cast["owner"], size=4)
    ranking_service.stage_stop(review=review, stage=stage, actor=cast["owner"])
    copy = backup.review_import(data=backup.review_export(review=review), slug="copy")
    copy_stage = copy.stages.get(is_entry=True)
    stop = StageStop.objects.get(stage=copy_stage)
    copied = Study.objects.filter(review=copy, outcome="excluded_automatic")
    assert copied.count() == 100 and set(stop.study_ids) == set(copied.values_list("pk", flat=True))
    assert set(AuditSample.objects.get(stage=copy_stage).study_ids) <= set(stop.study_ids)
    assert funnel_live(review=copy)["excluded_automatic"] == 100
    ranking_service.stage_stop_undo(
        review=copy, stage=copy_stage, actor=cast["owner"], seen_stop=stop.pk
    )
    assert not Study.objects.filter(review=copy, outcome="excluded_automatic").exists()
    # The original is untouched.
    assert Study.objects.filter(review=review, outcome="excluded_automatic").count() == 100
