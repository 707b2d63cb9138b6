"""Quality views: pages, fragments, access, methods, bad input, Table 5 and its CSV."""

import csv
import io

import pytest
from django.urls import reverse

from screening.models import QualityAnswer, QualityAssignment, QualityConsensus
from screening.services.quality import quality_answer_record, quality_assessors_assign

from .quality_helpers import included_study, page_title, seed_protocol


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
        quality_answer_record(
            review=review, study=study, criterion=qc2, assessor=cast[user], answer=answer
        )
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
        quality_answer_record(
            review=review,
            study=low,
            criterion=criterion,
            assessor=cast["reviewer"],
            answer="y" if criterion.code == "QC3" else "n",
        )
        for user in ("reviewer", "reviewer2"):
            quality_answer_record(
                review=review, study=study, criterion=criterion, assessor=cast[user], answer="y"
            )
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
    quality_answer_record(
        review=review, study=study, criterion=qc1, assessor=cast["reviewer"], answer="y"
    )
    page = client_for("reviewer").get(url("quality_study", review, study.pk)).content.decode()
    assert "Your answers" in page and 'data-qc-key="y"' in page and "&lt;script&gt;" in page
    # Blind mode: reviewer2 sees that reviewer answered, not what.
    other = client_for("reviewer2").get(
        url("quality_study", review, study.pk), HTTP_HX_TARGET="quality-summary", **htmx_headers
    )
    text = other.content.decode()
    assert other.status_code == 200 and "<html" not in text
    assert "answered" in text and "Yes" not in text.split("<tbody>")[1].split("</tr>")[0]
    owner = (
        client_for("owner")
        .get(
            url("quality_study", review, study.pk), HTTP_HX_TARGET="quality-summary", **htmx_headers
        )
        .content.decode()
    )
    assert "Yes" in owner.split("<tbody>")[1].split("</tr>")[0]


def test_home_title_is_the_page_title_only(setup, client_for):
    review, _ = setup
    body = client_for("reviewer").get(url("quality_home", review)).content.decode()
    assert page_title(body) == f"Quality · {review.title} · slrweb"
