"""Quality views: pages, fragments, access, methods, bad input, Table 5 and its CSV."""

import csv
import io

import pytest
from django.urls import reverse

from screening.models import AuditEvent, QualityAnswer, QualityAssignment, QualityConsensus
from screening.services.quality import quality_assessors_assign

from .quality_helpers import answer_as_seen, included_study, mark_done, page_title, seed_protocol


@pytest.fixture
def setup(review, cast):
    seed_protocol(review)
    study = included_study(review, title="Hostile <script>alert(1)</script> title", doi="10.1/x")
    quality_assessors_assign(
        review=review,
        study=study,
        assessors=[cast["reviewer"], cast["reviewer2"]],
        actor=cast["owner"],
    )
    return review, study


def url(name, review, *args):
    return reverse(f"screening:{name}", args=[review.slug, *args])


def test_home_page_and_fragment(setup, client_for, htmx_headers):
    review, study = setup
    client = client_for("reviewer")
    page = client.get(url("quality_home", review))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Your studies" in body and "&lt;script&gt;" in body and "<script>alert" not in body
    assert f"Continue with #{study.pk}" in body
    fragment = client.get(
        url("quality_home", review) + "?status=in_progress",
        HTTP_HX_TARGET="quality-studies",
        **htmx_headers,
    )
    assert fragment.status_code == 200
    assert "<html" not in fragment.content.decode() and "Hostile" in fragment.content.decode()
    empty = client.get(
        url("quality_home", review) + "?status=complete",
        HTTP_HX_TARGET="quality-studies",
        **htmx_headers,
    )
    assert "Hostile" not in empty.content.decode()


@pytest.mark.parametrize(
    "name,extra",
    [
        ("quality_home", ()),
        ("quality_table", ()),
        ("quality_table_csv", ()),
        ("quality_study", ("study",)),
    ],
)
def test_read_views_access(setup, client, client_for, name, extra):
    review, study = setup
    target = url(name, review, *[study.pk for _ in extra])
    assert client.get(target).status_code == 302  # anonymous: to the login page
    assert client_for("outsider").get(target).status_code == 404
    assert client_for("viewer").get(target).status_code == 200
    assert client_for("viewer").post(target).status_code == 405


def test_answer_autosave_returns_row_and_summary(setup, client_for, htmx_headers, cast):
    review, study = setup
    qc1 = review.quality_criteria.get(code="QC1")
    response = client_for("reviewer").post(
        url("quality_answer", review, study.pk),
        {"criterion": qc1.pk, "answer": "y", "justification": "clear evidence"},
        **htmx_headers,
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert f'id="qc-row-{qc1.pk}"' in body and 'hx-swap-oob="true"' in body
    answer = QualityAnswer.objects.get(study=study, assessor=cast["reviewer"])
    assert answer.answer == 1 and answer.justification == "clear evidence"


def test_answer_bad_input_is_refused_with_message(setup, client_for, htmx_headers):
    review, study = setup
    qc1 = review.quality_criteria.get(code="QC1")
    response = client_for("reviewer").post(
        url("quality_answer", review, study.pk),
        {"criterion": qc1.pk, "answer": "p"},
        **htmx_headers,
    )
    assert response.status_code == 422
    assert "Choose one of the answers" in response.content.decode()
    response = client_for("reviewer").post(
        url("quality_answer", review, study.pk),
        {"criterion": 999999, "answer": "y"},
        **htmx_headers,
    )
    assert response.status_code == 422
    assert "does not belong to the review" in response.content.decode()
    assert not QualityAnswer.objects.exists()


def test_answer_without_javascript_posts_back_to_the_sheet(setup, client_for, cast):
    review, study = setup
    qc1 = review.quality_criteria.get(code="QC1")
    sheet = url("quality_study", review, study.pk)
    client = client_for("reviewer")
    response = client.post(
        url("quality_answer", review, study.pk), {"criterion": qc1.pk, "answer": "n"}
    )
    assert response.status_code == 302 and response["Location"] == sheet
    assert QualityAnswer.objects.get(study=study, assessor=cast["reviewer"]).answer == 0
    response = client.post(
        url("quality_answer", review, study.pk), {"criterion": qc1.pk, "answer": "p"}, follow=True
    )
    assert "Choose one of the answers" in response.content.decode()
    assert QualityAnswer.objects.get(study=study, assessor=cast["reviewer"]).answer == 0


def test_answer_write_access(setup, client, client_for, cast, review):
    _, study = setup
    qc1 = review.quality_criteria.get(code="QC1")
    target = url("quality_answer", review, study.pk)
    data = {"criterion": qc1.pk, "answer": "y"}
    assert client.post(target, data).status_code == 302
    assert client_for("outsider").post(target, data).status_code == 404
    assert client_for("viewer").post(target, data).status_code == 403
    assert client_for("owner").post(target, data).status_code == 403  # not an assessor here
    assert client_for("reviewer").get(target).status_code == 405
    assert not QualityAnswer.objects.exists()


def test_consensus_by_owner_only(setup, client_for, htmx_headers, cast):
    review, study = setup
    qc2 = review.quality_criteria.get(code="QC2")
    for user, answer in (("reviewer", "y"), ("reviewer2", "n")):
        answer_as_seen(
            review=review, study=study, criterion=qc2, assessor=cast[user], answer=answer
        )
        for other in review.quality_criteria.exclude(pk=qc2.pk):
            answer_as_seen(
                review=review, study=study, criterion=other, assessor=cast[user], answer="y"
            )
    mark_done(review, study, cast["reviewer"], cast["reviewer2"])
    page = client_for("owner").get(url("quality_study", review, study.pk))
    assert "1 disagreement for the owner" in page.content.decode()
    target = url("quality_consensus", review, study.pk)
    assert (
        client_for("reviewer").post(target, {"criterion": qc2.pk, "answer": "y"}).status_code == 403
    )
    bad = client_for("owner").post(target, {"criterion": qc2.pk, "answer": "maybe"}, **htmx_headers)
    assert bad.status_code == 422 and "Choose one of the answers" in bad.content.decode()
    ok = client_for("owner").post(target, {"criterion": qc2.pk, "answer": "n"}, **htmx_headers)
    assert ok.status_code == 200 and 'id="quality-summary"' in ok.content.decode()
    assert QualityConsensus.objects.get(study=study, criterion=qc2).method == "adjudicated"


def test_assign_views(setup, client_for, cast):
    review, study = setup
    target = url("quality_assign", review, study.pk)
    assert (
        client_for("reviewer").post(target, {"assessors": [cast["reviewer"].pk]}).status_code == 403
    )
    response = client_for("owner").post(target, {"assessors": [cast["viewer"].pk]}, follow=True)
    assert "Select a valid choice" in response.content.decode()
    assert QualityAssignment.objects.filter(study=study).count() == 2
    client_for("owner").post(target, {"assessors": [cast["owner"].pk]})
    assert list(
        QualityAssignment.objects.filter(study=study).values_list("assessor", flat=True)
    ) == [cast["owner"].pk]
    other = included_study(review, title="second")
    bulk = url("quality_assign_bulk", review)
    response = client_for("owner").post(
        bulk, {"assessors": [cast["reviewer"].pk], "per_study": 2}, follow=True
    )
    assert "Choose at least 2 people" in response.content.decode()
    client_for("owner").post(
        bulk, {"assessors": [cast["reviewer"].pk, cast["reviewer2"].pk], "per_study": 2}
    )
    assert other.quality_assignments.count() == 2


def test_settings_view(setup, client_for):
    review, _ = setup
    target = url("quality_settings", review)
    assert client_for("reviewer").post(target, {"scale": "yes_no"}).status_code == 403
    response = client_for("owner").post(target, {"scale": "yes_no", "threshold": "-1"}, follow=True)
    assert "greater than or equal to 0" in response.content.decode()
    client_for("owner").post(target, {"scale": "yes_partly_no", "threshold": "2.5"})
    review.refresh_from_db()
    assert review.quality_scale == "yes_partly_no" and review.quality_threshold == 2.5


def test_table5_sort_fragment_and_csv(setup, client_for, htmx_headers, cast):
    review, study = setup
    low = included_study(review, title='Ångström, naïve; "quoted", study', year=2019)
    quality_assessors_assign(
        review=review, study=low, assessors=[cast["reviewer"]], actor=cast["owner"]
    )
    for criterion in review.quality_criteria.all():
        answer_as_seen(
            review=review,
            study=low,
            criterion=criterion,
            assessor=cast["reviewer"],
            answer="y" if criterion.code == "QC3" else "n",
        )
        for user in ("reviewer", "reviewer2"):
            answer_as_seen(
                review=review, study=study, criterion=criterion, assessor=cast[user], answer="y"
            )
    mark_done(review, low, cast["reviewer"])
    mark_done(review, study, cast["reviewer"], cast["reviewer2"])
    client = client_for("viewer")
    page = client.get(url("quality_table", review) + "?sort=total&dir=desc")
    body = page.content.decode()
    assert body.index("Hostile") < body.index("Ångström")
    assert "Cohen" in body
    fragment = client.get(
        url("quality_table", review) + "?sort=total", HTTP_HX_TARGET="table5", **htmx_headers
    )
    text = fragment.content.decode()
    assert "<html" not in text and text.index("Ångström") < text.index("Hostile")
    response = client.get(url("quality_table_csv", review))
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == [
        "Study",
        "Year",
        "DOI",
        "QC1",
        "QC2",
        "QC3",
        "QC4",
        "QC5",
        "Total",
        "Assessors",
    ]
    by_title = {r[0]: r for r in rows[1:]}
    assert by_title['Ångström, naïve; "quoted", study'][3:9] == ["0", "0", "1", "0", "0", "1"]
    assert by_title["Hostile <script>alert(1)</script> title"][8] == "5"
    assert by_title["Hostile <script>alert(1)</script> title"][9] == "reviewer; reviewer2"


def test_study_of_other_review_or_not_included_is_404(setup, client_for, review):
    _, study = setup
    from screening.models import Study

    screening = Study.objects.create(review=review, title="in screening")
    assert client_for("owner").get(url("quality_study", review, screening.pk)).status_code == 404


def test_study_page_and_summary_fragment(setup, client_for, htmx_headers, cast):
    review, study = setup
    qc1 = review.quality_criteria.get(code="QC1")
    answer_as_seen(review=review, study=study, criterion=qc1, assessor=cast["reviewer"], answer="y")
    page = client_for("reviewer").get(url("quality_study", review, study.pk)).content.decode()
    assert "Your answers" in page and 'data-qc-key="y"' in page and "&lt;script&gt;" in page
    # Blind mode: nobody else sees the answer (or whether there is one) before the reveal.
    for user in ("reviewer2", "owner"):
        other = client_for(user).get(
            url("quality_study", review, study.pk),
            HTTP_HX_TARGET="quality-summary",
            **htmx_headers,
        )
        text = other.content.decode()
        assert other.status_code == 200 and "<html" not in text
        first_row = text.split("<tbody>")[1].split("</tr>")[0]
        assert "hidden" in first_row and "Yes" not in first_row


def test_home_title_is_the_page_title_only(setup, client_for):
    review, _ = setup
    body = client_for("reviewer").get(url("quality_home", review)).content.decode()
    assert page_title(body) == f"Quality · {review.title} · slrweb"


# Blind mode (the review default): until every assessor has marked the study done, nothing
# about another assessor's answers shows. reviewer answers Yes to all five criteria, reviewer2
# Yes to all but QC2: before the reveal no page may tell either of them (or anyone) where they
# agree or differ. One test per place that could tell.

LEAKS = ("agreed", "disagree", "table-danger", "text-bg-danger", "≠")


@pytest.fixture
def both_answered(setup, cast):
    review, study = setup
    for user, answers in (("reviewer", "yyyyy"), ("reviewer2", "ynyyy")):
        for criterion, answer in zip(review.quality_criteria.all(), answers, strict=True):
            answer_as_seen(
                review=review, study=study, criterion=criterion, assessor=cast[user], answer=answer
            )
    return review, study


def assert_reveals_nothing(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, leak


@pytest.mark.parametrize("user", ["reviewer2", "owner", "viewer"])
def test_blind_study_page_reveals_no_other_answer_before_both_done(both_answered, client_for, user):
    review, study = both_answered
    page = client_for(user).get(url("quality_study", review, study.pk)).content.decode()
    summary = page.split('id="quality-summary"')[1]
    assert_reveals_nothing(summary)
    assert "0 of 5 criteria have a consensus" in summary and "pending" in summary
    if user == "reviewer2":
        # Only their own answers, never the other's: one "No" (their own QC2), no "Yes" of
        # the other's column.
        assert summary.count('<span class="text-body-secondary">hidden</span>') == 5


def test_blind_summary_fragment_reveals_nothing_before_both_done(
    both_answered, client_for, htmx_headers
):
    review, study = both_answered
    response = client_for("reviewer2").get(
        url("quality_study", review, study.pk), HTTP_HX_TARGET="quality-summary", **htmx_headers
    )
    text = response.content.decode()
    assert_reveals_nothing(text)
    assert "0 of 5 criteria have a consensus" in text


def test_blind_answer_response_reveals_nothing_before_both_done(
    both_answered, client_for, htmx_headers
):
    """The answer that completes a criterion used to answer with "agreed" or "disagree"."""
    review, study = both_answered
    qc1 = review.quality_criteria.get(code="QC1")
    response = client_for("reviewer2").post(
        url("quality_answer", review, study.pk),
        {"criterion": qc1.pk, "answer": "n", "version": "1"},
        **htmx_headers,
    )
    assert response.status_code == 200
    assert_reveals_nothing(response.content.decode())


def test_blind_overview_counts_and_colours_reveal_nothing_before_both_done(
    both_answered, client_for, htmx_headers
):
    review, _ = both_answered
    for user in ("reviewer2", "owner"):
        page = client_for(user).get(url("quality_home", review)).content.decode()
        studies = page.split('id="quality-studies"')[1]
        assert_reveals_nothing(studies)
        assert "0/5" in studies  # the consensus column
        assert 'Disagreement <span class="badge text-bg-light">0</span>' in page
        assert 'In progress <span class="badge text-bg-light">1</span>' in page
        # reviewer2 does not see how far reviewer got either.
        if user == "reviewer2":
            assert "reviewer (5/5)" not in studies


def test_blind_overview_disagreement_filter_is_empty_before_both_done(
    both_answered, client_for, htmx_headers
):
    review, study = both_answered
    fragment = (
        client_for("reviewer2")
        .get(
            url("quality_home", review) + "?status=disagreement",
            HTTP_HX_TARGET="quality-studies",
            **htmx_headers,
        )
        .content.decode()
    )
    assert "Hostile" not in fragment


def test_blind_table5_page_and_fragment_reveal_nothing_before_both_done(
    both_answered, client_for, htmx_headers
):
    review, _ = both_answered
    page = client_for("reviewer2").get(url("quality_table", review)).content.decode()
    fragment = (
        client_for("reviewer2")
        .get(url("quality_table", review), HTTP_HX_TARGET="table5", **htmx_headers)
        .content.decode()
    )
    for text in (page, fragment):
        table = text.split("<tbody>")[1].split("</tbody>")[0]
        assert_reveals_nothing(table)
        # No consensus number in any criterion cell, no total.
        assert table.count('<span class="text-body-secondary">–</span>') == 6
        agreement = text.split('id="kappa-heading"')[1].split("</tbody>")[0]
        # No study counts towards agreement before its assessors are done.
        assert '<td class="text-end">0</td><td class="text-end">0</td>' in agreement


def test_blind_table5_csv_reveals_nothing_before_both_done(both_answered, client_for):
    review, _ = both_answered
    response = client_for("reviewer2").get(url("quality_table_csv", review))
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[1][3:9] == ["", "", "", "", "", ""]


def test_blind_audit_trail_records_no_agreement_before_both_done(both_answered, client_for):
    review, _ = both_answered
    page = client_for("reviewer2").get(reverse("screening:protocol_detail", args=[review.slug]))
    assert "quality.consensus" not in page.content.decode()


def test_reveal_after_both_done_then_a_change_is_a_visible_revision(
    both_answered, client_for, htmx_headers, cast
):
    review, study = both_answered
    done = url("quality_done", review, study.pk)
    assert client_for("reviewer").post(done).status_code == 302
    text = client_for("reviewer2").get(url("quality_study", review, study.pk)).content.decode()
    assert_reveals_nothing(text.split('id="quality-summary"')[1])  # one of two is done
    assert client_for("reviewer2").post(done).status_code == 302
    summary = (
        client_for("reviewer2").get(url("quality_study", review, study.pk)).content.decode()
    ).split('id="quality-summary"')[1]
    assert "agreed" in summary and "disagree" in summary and "table-danger" in summary
    # reviewer now changes QC2 to match: a revision, shown to everyone and audited.
    qc2 = review.quality_criteria.get(code="QC2")
    response = client_for("reviewer").post(
        url("quality_answer", review, study.pk),
        {"criterion": qc2.pk, "answer": "n", "version": "1"},
        **htmx_headers,
    )
    assert response.status_code == 200 and "revised after the reveal" in response.content.decode()
    stored = QualityAnswer.objects.get(study=study, criterion=qc2, assessor=cast["reviewer"])
    assert (stored.answer, stored.answer_at_reveal, stored.version) == (0, 1, 2)
    assert stored.revised_at is not None
    event = AuditEvent.objects.get(action="quality.answer_revise")
    assert event.actor == cast["reviewer"] and event.before["answer"] == "1.00"
    for user in ("reviewer2", "owner"):
        page = client_for(user).get(url("quality_study", review, study.pk)).content.decode()
        assert "revised; blind: Yes" in page
    # A revealed study cannot be reopened.
    response = client_for("reviewer").post(done, {"done": "0"}, follow=True)
    assert "change an answer directly" in response.content.decode()
    assert QualityAssignment.objects.get(study=study, assessor=cast["reviewer"]).completed_at


def test_stale_quality_answer_gets_409_with_the_current_answer_and_can_apply_anyway(
    setup, client_for, htmx_headers, cast
):
    review, study = setup
    qc1 = review.quality_criteria.get(code="QC1")
    target = url("quality_answer", review, study.pk)
    client = client_for("reviewer")
    tab_a = {"criterion": qc1.pk, "answer": "y", "version": "0"}
    assert client.post(target, tab_a, **htmx_headers).status_code == 200
    tab_b = {"criterion": qc1.pk, "answer": "n", "version": "0"}
    stale = client.post(target, tab_b, **htmx_headers)
    body = stale.content.decode()
    assert stale.status_code == 409 and stale["HX-Retarget"] == f"#qc-stale-{qc1.pk}"
    assert "<strong data-stale-current>Yes</strong>, by reviewer" in body
    assert QualityAnswer.objects.get(study=study, criterion=qc1).answer == 1
    forced = client.post(
        target,
        {"criterion": qc1.pk, "answer": "n", "version": "1", "force": "1"},
        **htmx_headers,
    )
    assert forced.status_code == 200 and "Saved: No" in forced.content.decode()
    stored = QualityAnswer.objects.get(study=study, criterion=qc1)
    assert (stored.answer, stored.version) == (0, 2)
    event = AuditEvent.objects.get(action="quality_answer.overwrite")
    assert event.before["version"] == 1 and event.after["version"] == 2


def test_stale_owner_decision_gets_409(setup, client_for, htmx_headers, cast):
    review, study = setup
    for user, answers in (("reviewer", "yyyyy"), ("reviewer2", "ynyyy")):
        for criterion, answer in zip(review.quality_criteria.all(), answers, strict=True):
            answer_as_seen(
                review=review, study=study, criterion=criterion, assessor=cast[user], answer=answer
            )
    mark_done(review, study, cast["reviewer"], cast["reviewer2"])
    qc2 = review.quality_criteria.get(code="QC2")
    target = url("quality_consensus", review, study.pk)
    client = client_for("owner")
    decide = {"criterion": qc2.pk, "answer": "n", "version": "0"}
    assert client.post(target, decide, **htmx_headers).status_code == 200
    stale = client.post(target, dict(decide, answer="y"), **htmx_headers)
    assert stale.status_code == 409 and stale["HX-Retarget"] == "#quality-consensus-stale"
    assert "<strong data-stale-current>No</strong>, by owner" in stale.content.decode()
    assert QualityConsensus.objects.get(study=study, criterion=qc2).answer == 0
