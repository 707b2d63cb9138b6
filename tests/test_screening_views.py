"""Screening page views: access, fragments, keyboard page, escaping, blind mode leaks."""

from django.urls import reverse

from screening.models import Criterion, Decision, FullText, ScreeningClaim, Study
from screening.selectors.screening import (
    reasons_allowed,
    stage_get,
    stage_with_reasons,
    study_get,
)
from screening.services.screening import decision_record

from .screening_helpers import exclusion_criteria, make_studies, stage


def url(name, review, *args):
    return reverse(f"screening:{name}", args=[review.slug, *args])


def test_home_lists_stages(review, client_for):
    make_studies(review, 3)
    response = client_for("reviewer").get(url("screening_home", review))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Title screening" in body and "3 needing decisions" in body


def test_stage_page_and_fragment(review, client_for, htmx_headers):
    (study,) = make_studies(review, 1, title="Deploying models with MLOps")
    client = client_for("reviewer")
    page = client.get(url("screening_stage", review, "title"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "<html" in body and "screening.js" in body and "Deploying models" in body
    assert "Include <kbd>I</kbd>" in body and "Undo <kbd>Z</kbd>" in body
    fragment = client.get(url("screening_stage", review, "title"), **htmx_headers)
    assert fragment.status_code == 200
    assert "<html" not in fragment.content.decode()
    assert 'id="screen-panel"' in fragment.content.decode()
    assert ScreeningClaim.objects.filter(study=study, reviewer__username="reviewer").count() == 1


def test_access_rules(review, client, client_for):
    make_studies(review, 1)
    target = url("screening_stage", review, "title")
    anonymous = client.get(target)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert client_for("outsider").get(target).status_code == 404
    assert client_for("viewer").get(target).status_code == 403
    assert client_for("viewer").post(url("screening_decide", review, "title")).status_code == 403
    assert client_for("reviewer").post(url("screening_home", review)).status_code == 405
    assert client_for("reviewer").get(url("screening_decide", review, "title")).status_code == 405
    assert client_for("reviewer").get(url("screening_stage", review, "nope")).status_code == 404


def test_title_stage_never_shows_the_abstract(review, client_for):
    make_studies(review, 1, abstract="SECRET-ABSTRACT-TEXT", venue="ICSE", year=2020)
    body = client_for("reviewer").get(url("screening_stage", review, "title")).content.decode()
    assert "SECRET-ABSTRACT-TEXT" not in body
    assert "ICSE" in body and "2020" in body


def test_abstract_stage_shows_title_and_abstract(review, client_for):
    make_studies(review, 1, stage_key="abstract", abstract="Visible abstract text")
    body = client_for("reviewer").get(url("screening_stage", review, "abstract")).content.decode()
    assert "Visible abstract text" in body


def test_hostile_title_is_escaped_and_highlighting_wraps_escaped_text(review, client_for):
    review.highlight_include_terms = "MLOps\nscript"
    review.highlight_exclude_terms = "survey"
    review.save()
    make_studies(
        review,
        1,
        stage_key="abstract",
        title='<script>alert("x")</script> MLOps survey',
        abstract="<img src=x onerror=alert(1)> an mlops pipeline",
    )
    body = client_for("reviewer").get(url("screening_stage", review, "abstract")).content.decode()
    assert "<script>alert" not in body
    assert "<img src=x" not in body
    assert '&lt;<mark class="hl-include">script</mark>&gt;' in body
    assert '<mark class="hl-include">MLOps</mark>' in body
    assert '<mark class="hl-exclude">survey</mark>' in body
    assert '<mark class="hl-include">mlops</mark>' in body


def test_decide_by_htmx_swaps_in_the_next_study(review, cast, client_for, htmx_headers):
    first, second = make_studies(review, 2)
    client = client_for("reviewer")
    client.get(url("screening_stage", review, "title"))
    response = client.post(
        url("screening_decide", review, "title"),
        {"study": first.pk, "verdict": "include", "note": "fits RQ1"},
        **htmx_headers,
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert f'data-study="{second.pk}"' in body and "Recorded: include" in body
    assert 'data-progress="mine">1<' in body
    decision = Decision.objects.get()
    assert (decision.study, decision.verdict, decision.note) == (first, "include", "fits RQ1")


def test_decide_without_htmx_redirects(review, client_for):
    (study,) = make_studies(review, 1)
    response = client_for("reviewer").post(
        url("screening_decide", review, "title"), {"study": study.pk, "verdict": "exclude"}
    )
    assert response.status_code == 302
    assert Decision.objects.count() == 1


def test_decide_bad_input(review, client_for, htmx_headers):
    (study,) = make_studies(review, 1, stage_key="full_text")
    client = client_for("reviewer")
    response = client.post(
        url("screening_decide", review, "full_text"),
        {"study": study.pk, "verdict": "maybe"},
        **htmx_headers,
    )
    assert response.status_code == 422
    assert "Choose include, uncertain or exclude" in response.content.decode()
    response = client.post(
        url("screening_decide", review, "full_text"),
        {"study": study.pk, "verdict": "exclude"},
        **htmx_headers,
    )
    assert response.status_code == 422
    assert "choose at least one exclusion reason" in response.content.decode()
    assert not Decision.objects.exists()
    other_review_study = Study.objects.create(
        review=type(review).objects.create(slug="o", title="o")
    )
    response = client.post(
        url("screening_decide", review, "full_text"),
        {"study": other_review_study.pk, "verdict": "include"},
    )
    assert response.status_code == 404
    assert not Decision.objects.exists()


def test_reasons_with_include_are_dropped(review, client_for):
    ec1, _, _ = exclusion_criteria(review)
    (study,) = make_studies(review, 1)
    client_for("reviewer").post(
        url("screening_decide", review, "title"),
        {"study": study.pk, "verdict": "include", "reasons": [ec1.pk]},
    )
    assert list(Decision.objects.get().reasons.all()) == []


def test_exclusion_with_numbered_reasons(review, client_for):
    ec1, ec2, _ = exclusion_criteria(review)
    (study,) = make_studies(review, 1)
    client = client_for("reviewer")
    body = client.get(url("screening_stage", review, "title")).content.decode()
    assert "<kbd>1</kbd>" in body and "EC1" in body
    assert "INVALID-TYPE" not in body  # other reasons only at full text
    client.post(
        url("screening_decide", review, "title"),
        {"study": study.pk, "verdict": "exclude", "reasons": [ec1.pk, ec2.pk]},
    )
    assert {c.code for c in Decision.objects.get().reasons.all()} == {"EC1", "EC2"}


def test_full_text_stage_offers_other_reasons(review, client_for):
    make_studies(review, 1, stage_key="full_text")
    body = client_for("reviewer").get(url("screening_stage", review, "full_text")).content.decode()
    assert "INVALID-TYPE" in body and "DUPLICATE" in body and "required to exclude" in body


def test_undo_and_skip(review, client_for, htmx_headers):
    first, second = make_studies(review, 2)
    client = client_for("reviewer")
    client.post(url("screening_decide", review, "title"), {"study": first.pk, "verdict": "exclude"})
    response = client.post(
        url("screening_undo", review, "title"), {"study": first.pk, "version": 1}, **htmx_headers
    )
    assert response.status_code == 200
    assert f'data-study="{first.pk}"' in response.content.decode()
    assert "Undone" in response.content.decode()
    assert not Decision.objects.exists()
    nothing = client.post(url("screening_undo", review, "title"), **htmx_headers)
    assert nothing.status_code == 422 and "Nothing to undo" in nothing.content.decode()
    skipped = client.post(
        url("screening_skip", review, "title"), {"study": first.pk}, **htmx_headers
    )
    assert f'data-study="{second.pk}"' in skipped.content.decode()
    bad = client.post(url("screening_skip", review, "title"), {"study": "x"}, **htmx_headers)
    assert bad.status_code == 422
    assert client.get(url("screening_undo", review, "title")).status_code == 405


def test_blind_screening_page_and_fragment_do_not_leak(review, cast, client_for, htmx_headers):
    (study,) = make_studies(review, 1)
    decision_record(
        review=review,
        study=study,
        stage=stage(review),
        reviewer=cast["reviewer"],
        verdict="exclude",
        note="OTHER-REVIEWERS-NOTE",
    )
    client = client_for("reviewer2")
    for response in (
        client.get(url("screening_stage", review, "title")),
        client.get(url("screening_stage", review, "title"), **htmx_headers),
    ):
        body = response.content.decode()
        assert f'data-study="{study.pk}"' in body
        assert "OTHER-REVIEWERS-NOTE" not in body and "Exclude</td>" not in body
        assert "reviewer</td>" not in body


def test_blind_study_detail(review, cast, client_for, htmx_headers):
    (study,) = make_studies(review, 1)
    decision_record(
        review=review,
        study=study,
        stage=stage(review),
        reviewer=cast["reviewer"],
        verdict="exclude",
        note="HIDDEN-NOTE",
    )
    detail = url("screening_study", review, study.pk)
    for who in ("reviewer2", "viewer", "owner"):
        for headers in ({}, htmx_headers):
            body = client_for(who).get(detail, **headers).content.decode()
            assert "HIDDEN-NOTE" not in body, who
    assert "HIDDEN-NOTE" in client_for("reviewer").get(detail).content.decode()
    decision_record(
        review=review,
        study=study,
        stage=stage(review),
        reviewer=cast["reviewer2"],
        verdict="exclude",
    )
    assert "HIDDEN-NOTE" in client_for("reviewer2").get(detail).content.decode()
    assert client_for("outsider").get(detail).status_code == 404
    assert client_for("reviewer").post(detail).status_code == 405


def test_study_detail_hides_abstract_at_title_stage(review, client_for):
    (study,) = make_studies(review, 1, abstract="PEEK-ABSTRACT")
    body = client_for("reviewer").get(url("screening_study", review, study.pk)).content.decode()
    assert "PEEK-ABSTRACT" not in body


def test_blind_mode_off_shows_decisions(review, cast, client_for):
    review.blind_mode = False
    review.save()
    (study,) = make_studies(review, 1)
    decision_record(
        review=review,
        study=study,
        stage=stage(review),
        reviewer=cast["reviewer"],
        verdict="exclude",
        note="OPEN-NOTE",
    )
    body = client_for("reviewer2").get(url("screening_study", review, study.pk)).content.decode()
    assert "OPEN-NOTE" in body


def test_panel_links_the_full_text_of_the_study_it_shows(review, client_for, htmx_headers):
    """The panel's study comes with its full text's status (one SQL read): a PDF link for an
    uploaded one, the upload hint otherwise, on the first panel and on the one after a decision."""
    studies = make_studies(review, 3, stage_key="full_text")
    FullText.objects.create(study=studies[0], status="uploaded", original_name="a.pdf")
    FullText.objects.create(study=studies[1], status="not_retrievable", reason="paywall")
    client = client_for("reviewer")
    panel = client.get(url("screening_stage", review, "full_text"), **htmx_headers)
    shown = []
    for _ in studies:
        body = panel.content.decode()
        study_id = int(body.split('name="study" value="', 1)[1].split('"', 1)[0])
        shown.append(study_id)
        download = reverse("screening:fulltext_download", args=[review.slug, study_id])
        uploaded = study_id == studies[0].pk
        assert (download in body) is uploaded
        assert ("No PDF yet" in body) is not uploaded
        panel = client.post(
            url("screening_decide", review, "full_text"),
            {"study": study_id, "version": 0, "verdict": "include"},
            **htmx_headers,
        )
        assert panel.status_code == 200 and "Recorded:" in panel.content.decode()
    assert sorted(shown) == sorted(s.pk for s in studies)


def test_sql_reads_return_what_the_orm_reads(review):
    """`model_rows` (the screening request's SQL reads) converts values as the ORM does: JSON
    lists, dates, the stage's and reasons' fields, the membership's review."""
    (study,) = make_studies(review, 1)
    Study.objects.filter(pk=study.pk).update(authors=["Ada", "Brian <b>"], keywords=["x"])
    exclusion_criteria(review, 2)
    title = stage(review)

    def fields(instance):
        return {
            f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields
        }

    assert fields(study_get(review=review, pk=study.pk)) == fields(Study.objects.get(pk=study.pk))
    assert study_get(review=review, pk=study.pk).authors == ["Ada", "Brian <b>"]
    assert (
        study_get(review=type(review).objects.create(slug="other", title="o"), pk=study.pk) is None
    )
    assert fields(stage_get(review=review, key="title")) == fields(title)
    assert [fields(c) for c in reasons_allowed(stage=title)] == [
        fields(c) for c in Criterion.objects.filter(review=review, kind="exclusion")
    ]
    # The stage and its reasons in one read: the same as the two reads, title and full text
    # (where the extra reasons, kind "other", are offered too); no such stage, None.
    full_text = stage(review, "full_text")
    offered_at_full_text = Criterion.objects.filter(
        review=review, kind__in=["exclusion", "other"]
    ).order_by("kind", "position", "id")
    assert [fields(c) for c in reasons_allowed(stage=full_text)] == [
        fields(c) for c in offered_at_full_text
    ]
    assert Criterion.objects.filter(review=review, kind="other").exists()
    for one in (title, full_text):
        read_stage, read_reasons = stage_with_reasons(review=review, key=one.key)
        assert fields(read_stage) == fields(one)
        assert [fields(c) for c in read_reasons] == [fields(c) for c in reasons_allowed(stage=one)]
    Criterion.objects.filter(review=review).delete()
    assert stage_with_reasons(review=review, key="title")[1] == []
    assert stage_with_reasons(review=review, key="nope") is None
