"""The protocol page and its inline editors: page, fragment, access, methods, bad input."""

import io
import json
from html import unescape

import pytest
from django.urls import reverse

from screening.models import (
    AuditEvent,
    Criterion,
    Decision,
    Membership,
    ResearchQuestion,
    Review,
    SearchRun,
    SearchString,
    Source,
    Stage,
    Study,
)
from screening.services import protocol as services
from screening.services.invitations import invitation_accept, invitation_create


@pytest.fixture
def seeded(review, cast):
    """The test review with one item in every list, two sources and a string with a run."""
    owner = cast["owner"]
    make = services.protocol_item_create
    lists = services.ORDERED_LISTS
    make(review=review, actor=owner, spec=lists["inclusion"], values={"code": "IC1", "text": "A"})
    make(review=review, actor=owner, spec=lists["inclusion"], values={"code": "IC2", "text": "B"})
    make(review=review, actor=owner, spec=lists["exclusion"], values={"code": "EC1", "text": "C"})
    make(
        review=review,
        actor=owner,
        spec=lists["research-questions"],
        values={"code": "RQ1", "text": "Why?", "theme": "Theme"},
    )
    make(review=review, actor=owner, spec=lists["quality"], values={"code": "QC1", "text": "Q?"})
    acm = make(review=review, actor=owner, spec=lists["sources"], values={"name": "ACM"})
    make(review=review, actor=owner, spec=lists["sources"], values={"name": "IEEE"})
    string = make(review=review, actor=owner, spec=lists["search-strings"], values={"text": '"x"'})
    services.search_run_set(
        review=review,
        actor=owner,
        search_string=string,
        source=acm,
        run_on=None,
        hits_reported=7,
        seen_version=0,
    )
    return review


def url(name, review, *args):
    return reverse(f"screening:{name}", args=[review.slug, *args])


def criterion(review, code):
    return Criterion.objects.get(review=review, code=code)


def write_urls(review):
    """Every write endpoint with a valid body (for the access matrix)."""
    ic1 = criterion(review, "IC1")
    string = SearchString.objects.get(review=review)
    source = Source.objects.get(review=review, name="ACM")
    stage = review.stages.get(key="title")
    member = Membership.objects.get(review=review, user__username="reviewer2")
    return [
        (
            url("protocol_list", review, "inclusion"),
            {"new-inclusion-code": "IC9", "new-inclusion-text": "t"},
        ),
        (
            url("protocol_item", review, "inclusion", ic1.pk),
            {f"edit-{ic1.pk}-code": "IC1", f"edit-{ic1.pk}-text": "new"},
        ),
        (url("protocol_item_move", review, "inclusion", ic1.pk), {"direction": "down"}),
        (url("protocol_item_delete", review, "inclusion", ic1.pk), {}),
        (url("protocol_settings", review, "basics"), {"basics-title": "T"}),
        (url("protocol_stage", review, stage.pk), {}),
        (url("protocol_search_cell", review, string.pk, source.pk), {"cell-hits_reported": "3"}),
        (url("protocol_member", review, member.pk), {f"m{member.pk}-role": "viewer"}),
        (url("protocol_member_remove", review, member.pk), {}),
        (url("protocol_import", review), {}),
    ]


def read_urls(review):
    return [
        url("protocol_detail", review),
        url("protocol_list", review, "inclusion"),
        url("protocol_settings", review, "basics"),
        url("protocol_stages", review),
        url("protocol_searches", review),
        url("protocol_export", review),
    ]


# ----- the page --------------------------------------------------------------------------


def test_page_shows_protocol_read_only_to_viewer(seeded, client_for):
    response = client_for("viewer").get(url("protocol_detail", seeded))
    html = response.content.decode()
    assert response.status_code == 200
    assert "IC2" in html and "Why?" in html and "QC1" in html
    assert 'id="table1"' in html
    assert "Add inclusion criterion" not in html
    assert "protocol_item" not in html and "/delete/" not in html
    assert "read-only" in html


def test_page_shows_edit_controls_to_owner(seeded, client_for):
    html = client_for("owner").get(url("protocol_detail", seeded)).content.decode()
    assert "Add inclusion criterion" in html
    assert url("protocol_item_delete", seeded, "inclusion", criterion(seeded, "IC1").pk) in html
    assert url("protocol_export", seeded) in html


def test_fragment_is_only_the_section(seeded, client_for, htmx_headers):
    response = client_for("viewer").get(url("protocol_list", seeded, "inclusion"), **htmx_headers)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="list-inclusion"')
    assert "<html" not in html and "IC1" in html and "EC1" not in html


@pytest.mark.parametrize("index", range(6))
def test_reads_need_login_and_membership(seeded, client, client_for, index):
    target = read_urls(seeded)[index]
    anonymous = client.get(target)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))
    assert client_for("outsider").get(target).status_code == 404
    assert client_for("viewer").get(target).status_code == 200


@pytest.mark.parametrize("index", range(10))
def test_writes_are_for_owners_only(seeded, client, client_for, htmx_headers, index):
    target, data = write_urls(seeded)[index]
    events = AuditEvent.objects.count()
    anonymous = client.post(target, data)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))
    assert client_for("outsider").post(target, data, **htmx_headers).status_code == 404
    assert client_for("viewer").post(target, data, **htmx_headers).status_code == 403
    assert client_for("reviewer").post(target, data, **htmx_headers).status_code == 403
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize(
    "name,args,method",
    [
        ("protocol_detail", (), "post"),
        ("protocol_stages", (), "post"),
        ("protocol_searches", (), "post"),
        ("protocol_export", (), "post"),
        ("protocol_import", (), "get"),
        ("protocol_list", ("inclusion",), "delete"),
    ],
)
def test_wrong_method(seeded, client_for, name, args, method):
    response = getattr(client_for("owner"), method)(url(name, seeded, *args))
    assert response.status_code == 405


def test_item_delete_and_move_wrong_method(seeded, client_for):
    ic1 = criterion(seeded, "IC1")
    client = client_for("owner")
    assert client.get(url("protocol_item_delete", seeded, "inclusion", ic1.pk)).status_code == 405
    assert client.get(url("protocol_item_move", seeded, "inclusion", ic1.pk)).status_code == 405
    member = Membership.objects.get(review=seeded, user__username="viewer")
    assert client.get(url("protocol_member", seeded, member.pk)).status_code == 405


def test_unknown_list_is_404(seeded, client_for):
    assert client_for("owner").get(url("protocol_list", seeded, "nope")).status_code == 404


def test_item_of_another_review_is_404(seeded, client_for, cast):
    other = Review.objects.create(slug="other", title="Other")
    foreign = Criterion.objects.create(review=other, kind="inclusion", code="X1", text="x")
    response = client_for("owner").post(
        url("protocol_item_delete", seeded, "inclusion", foreign.pk)
    )
    assert response.status_code == 404
    assert Criterion.objects.filter(pk=foreign.pk).exists()


# ----- ordered lists ---------------------------------------------------------------------


def test_add_criterion_returns_fragment_and_audits(seeded, client_for, htmx_headers, cast):
    response = client_for("owner").post(
        url("protocol_list", seeded, "inclusion"),
        {"new-inclusion-code": "IC3", "new-inclusion-text": "Studies about <b>MLOps</b>"},
        **htmx_headers,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="list-inclusion"')
    assert "&lt;b&gt;MLOps&lt;/b&gt;" in html and "<b>MLOps</b>" not in html
    created = criterion(seeded, "IC3")
    assert (created.kind, created.position) == ("inclusion", 2)
    event = AuditEvent.objects.get(action="criterion_create", object_id=str(created.pk))
    assert event.actor == cast["owner"]
    assert event.after["code"] == "IC3" and event.before is None


def test_add_without_htmx_redirects_to_the_section(seeded, client_for):
    response = client_for("owner").post(
        url("protocol_list", seeded, "exclusion"),
        {"new-exclusion-code": "EC2", "new-exclusion-text": "Not English"},
    )
    assert response.status_code == 302
    assert response["Location"].endswith("#list-exclusion")
    assert criterion(seeded, "EC2").kind == "exclusion"


@pytest.mark.parametrize(
    "data,message",
    [
        ({"new-inclusion-code": "", "new-inclusion-text": "x"}, "This field is required."),
        ({"new-inclusion-code": "IC1", "new-inclusion-text": "x"}, "already used"),
        # Codes are unique across kinds: an exclusion code cannot be reused for inclusion.
        ({"new-inclusion-code": "EC1", "new-inclusion-text": "x"}, "already used"),
        ({"new-inclusion-code": "A" * 21, "new-inclusion-text": "x"}, "at most 20"),
    ],
)
def test_add_bad_input_saves_nothing(seeded, client_for, htmx_headers, data, message):
    before = (Criterion.objects.count(), AuditEvent.objects.count())
    response = client_for("owner").post(
        url("protocol_list", seeded, "inclusion"), data, **htmx_headers
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert message in html and "is-invalid" in html
    assert html.lstrip().startswith('<section id="list-inclusion"')
    assert (Criterion.objects.count(), AuditEvent.objects.count()) == before


def test_bad_input_without_htmx_shows_the_page_with_errors(seeded, client_for):
    response = client_for("owner").post(
        url("protocol_list", seeded, "research-questions"),
        {"new-research-questions-code": "RQ1", "new-research-questions-text": "dup"},
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert "<html" in html and "already used" in html


def test_edit_form_fragment_then_update(seeded, client_for, htmx_headers):
    ic1 = criterion(seeded, "IC1")
    client = client_for("owner")
    form = client.get(url("protocol_item", seeded, "inclusion", ic1.pk), **htmx_headers)
    assert form.status_code == 200
    assert f'name="edit-{ic1.pk}-text"' in form.content.decode()
    response = client.post(
        url("protocol_item", seeded, "inclusion", ic1.pk),
        {f"edit-{ic1.pk}-code": "IC1", f"edit-{ic1.pk}-text": "Reworded", "version": "1"},
        **htmx_headers,
    )
    assert response.status_code == 200 and "Reworded" in response.content.decode()
    event = AuditEvent.objects.get(action="criterion_update")
    assert (event.before["text"], event.after["text"]) == ("A", "Reworded")


def test_edit_page_without_htmx(seeded, client_for):
    ic1 = criterion(seeded, "IC1")
    response = client_for("owner").get(url("protocol_item", seeded, "inclusion", ic1.pk))
    assert response.status_code == 200
    assert "<html" in response.content.decode()


def test_update_to_a_used_code_is_refused(seeded, client_for, htmx_headers):
    ic1 = criterion(seeded, "IC1")
    response = client_for("owner").post(
        url("protocol_item", seeded, "inclusion", ic1.pk),
        {f"edit-{ic1.pk}-code": "IC2", f"edit-{ic1.pk}-text": "x"},
        **htmx_headers,
    )
    assert response.status_code == 422 and "already used" in response.content.decode()
    ic1.refresh_from_db()
    assert (ic1.code, ic1.text) == ("IC1", "A")
    assert not AuditEvent.objects.filter(action="criterion_update").exists()


def test_move_reorders_and_audits(seeded, client_for, htmx_headers):
    ic1, ic2 = criterion(seeded, "IC1"), criterion(seeded, "IC2")
    response = client_for("owner").post(
        url("protocol_item_move", seeded, "inclusion", ic1.pk),
        {"direction": "down"},
        **htmx_headers,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index("IC2") < html.index("IC1")
    ic1.refresh_from_db()
    ic2.refresh_from_db()
    assert (ic2.position, ic1.position) == (0, 1)
    event = AuditEvent.objects.get(action="criterion_move")
    assert event.before == {"order": [ic1.pk, ic2.pk]}
    assert event.after == {"order": [ic2.pk, ic1.pk]}


def test_move_bad_direction(seeded, client_for, htmx_headers):
    ic1 = criterion(seeded, "IC1")
    response = client_for("owner").post(
        url("protocol_item_move", seeded, "inclusion", ic1.pk),
        {"direction": "sideways"},
        **htmx_headers,
    )
    assert response.status_code == 422
    assert not AuditEvent.objects.filter(action="criterion_move").exists()


def test_delete_renumbers_and_audits(seeded, client_for, htmx_headers):
    ic1 = criterion(seeded, "IC1")
    response = client_for("owner").post(
        url("protocol_item_delete", seeded, "inclusion", ic1.pk), {"version": "1"}, **htmx_headers
    )
    assert response.status_code == 200 and "IC1" not in response.content.decode()
    assert criterion(seeded, "IC2").position == 0
    event = AuditEvent.objects.get(action="criterion_delete")
    assert event.before["code"] == "IC1" and event.after is None


def test_delete_refused_when_criterion_is_a_decision_reason(seeded, client_for, htmx_headers, cast):
    ec1 = criterion(seeded, "EC1")
    study = Study.objects.create(review=seeded, title="s")
    decision = Decision.objects.create(
        review=seeded,
        study=study,
        stage=seeded.stages.first(),
        reviewer=cast["reviewer"],
        verdict="exclude",
    )
    decision.reasons.add(ec1)
    response = client_for("owner").post(
        url("protocol_item_delete", seeded, "exclusion", ec1.pk), {"version": "1"}, **htmx_headers
    )
    assert response.status_code == 422
    assert "cannot be deleted" in response.content.decode()
    assert Criterion.objects.filter(pk=ec1.pk).exists()


def test_source_change_asks_table1_to_reload(seeded, client_for, htmx_headers):
    response = client_for("owner").post(
        url("protocol_list", seeded, "sources"),
        {"new-sources-name": "Scopus"},
        **htmx_headers,
    )
    assert response.status_code == 200
    assert response["HX-Trigger"] == "searches-changed"
    table = client_for("owner").get(url("protocol_searches", seeded), **htmx_headers)
    assert "Scopus" in table.content.decode()


# ----- settings --------------------------------------------------------------------------


def test_settings_display_and_edit_fragments(seeded, client_for, htmx_headers):
    client = client_for("owner")
    shown = client.get(url("protocol_settings", seeded, "quality"), **htmx_headers)
    assert shown.status_code == 200 and "off" in shown.content.decode()
    form = client.get(url("protocol_settings", seeded, "quality") + "?edit=1", **htmx_headers)
    assert 'name="quality-quality_threshold"' in form.content.decode()
    assert (
        client_for("viewer")
        .get(url("protocol_settings", seeded, "quality") + "?edit=1")
        .status_code
        == 403
    )


def test_settings_update_audits_changed_fields(seeded, client_for, htmx_headers):
    response = client_for("owner").post(
        url("protocol_settings", seeded, "quality"),
        {
            "quality-quality_scale": "yes_partly_no",
            "quality-quality_threshold": "2.5",
            "version": "1",
        },
        **htmx_headers,
    )
    assert response.status_code == 200
    seeded.refresh_from_db()
    assert seeded.quality_scale == "yes_partly_no" and str(seeded.quality_threshold) == "2.50"
    event = AuditEvent.objects.get(action="review_update")
    assert event.before == {"quality_scale": "yes_no", "quality_threshold": None, "version": 1}
    assert event.after == {
        "quality_scale": "yes_partly_no",
        "quality_threshold": "2.50",
        "version": 2,
    }


@pytest.mark.parametrize(
    "section,data,message",
    [
        ("basics", {"basics-title": "", "basics-objectives": "x"}, "This field is required."),
        (
            "quality",
            {"quality-quality_scale": "yes_no", "quality-quality_threshold": "-1"},
            "greater than or equal to 0",
        ),
        (
            "quality",
            {"quality-quality_scale": "ten", "quality-quality_threshold": ""},
            "Select a valid choice",
        ),
        ("screening", {"screening-screening_mode": "fast"}, "Select a valid choice"),
    ],
)
def test_settings_bad_input(seeded, client_for, htmx_headers, section, data, message):
    before = Review.objects.filter(pk=seeded.pk).values().get()
    response = client_for("owner").post(
        url("protocol_settings", seeded, section), data, **htmx_headers
    )
    assert response.status_code == 422 and message in response.content.decode()
    assert Review.objects.filter(pk=seeded.pk).values().get() == before
    assert not AuditEvent.objects.filter(action="review_update").exists()


def test_unknown_settings_section_is_404(seeded, client_for):
    assert client_for("owner").get(url("protocol_settings", seeded, "nope")).status_code == 404


def screening_data(mode, blind=True):
    data = {
        "screening-screening_mode": mode,
        "screening-highlight_include_terms": "MLOps",
        "version": "1",
    }
    if blind:
        data["screening-blind_mode"] = "on"
    return data


def test_switching_to_combined_rebuilds_stages(seeded, client_for, htmx_headers):
    study = Study.objects.create(review=seeded, current_stage=seeded.stages.get(key="title"))
    response = client_for("owner").post(
        url("protocol_settings", seeded, "screening"), screening_data("combined"), **htmx_headers
    )
    assert response.status_code == 204 and response["HX-Refresh"] == "true"
    assert list(seeded.stages.values_list("key", flat=True)) == ["title_abstract", "full_text"]
    study.refresh_from_db()
    assert study.current_stage.key == "title_abstract"
    assert AuditEvent.objects.filter(action="stage_rebuild").exists()
    seeded.refresh_from_db()
    assert seeded.highlight_include_terms == "MLOps"


def test_switching_mode_refused_once_a_decision_exists(seeded, client_for, htmx_headers, cast):
    title = seeded.stages.get(key="title")
    study = Study.objects.create(review=seeded, current_stage=title)
    Decision.objects.create(
        review=seeded, study=study, stage=title, reviewer=cast["reviewer"], verdict="include"
    )
    response = client_for("owner").post(
        url("protocol_settings", seeded, "screening"), screening_data("combined"), **htmx_headers
    )
    assert response.status_code == 422
    assert "can no longer change" in response.content.decode()
    seeded.refresh_from_db()
    assert seeded.screening_mode == "staged"
    assert list(seeded.stages.values_list("key", flat=True)) == ["title", "abstract", "full_text"]


def test_blind_mode_off(seeded, client_for, htmx_headers):
    response = client_for("owner").post(
        url("protocol_settings", seeded, "screening"),
        screening_data("staged", blind=False),
        **htmx_headers,
    )
    # Same mode: the section is swapped in place, no page refresh.
    assert response.status_code == 200 and "HX-Refresh" not in response
    assert "Blind mode" in response.content.decode()
    seeded.refresh_from_db()
    assert seeded.blind_mode is False


# ----- stages ----------------------------------------------------------------------------


def stage_data(stage, **changes):
    data = {
        "name": stage.name,
        "reviewers_required": stage.reviewers_required,
        "consensus_rule": stage.consensus_rule,
        "queue_order": stage.queue_order,
        "route_include": stage.route_include,
        "route_uncertain": stage.route_uncertain,
        "route_exclude": stage.route_exclude,
    }
    data.update(changes)
    if stage.reasons_required:
        data.setdefault("reasons_required", "on")
    return {f"stage-{stage.pk}-{key}": value for key, value in data.items()} | {
        "version": str(stage.version)
    }


def test_stage_edit_form_offers_only_later_stages(seeded, client_for, htmx_headers):
    abstract = seeded.stages.get(key="abstract")
    html = (
        client_for("owner")
        .get(url("protocol_stage", seeded, abstract.pk), **htmx_headers)
        .content.decode()
    )
    assert 'value="full_text"' in html and 'value="title"' not in html


def test_stage_update(seeded, client_for, htmx_headers):
    title = seeded.stages.get(key="title")
    response = client_for("owner").post(
        url("protocol_stage", seeded, title.pk),
        stage_data(
            title, reviewers_required=3, consensus_rule="majority", route_uncertain="full_text"
        ),
        **htmx_headers,
    )
    assert response.status_code == 200, response.content.decode()
    title.refresh_from_db()
    assert (title.reviewers_required, title.consensus_rule, title.route_uncertain) == (
        3,
        "majority",
        "full_text",
    )
    event = AuditEvent.objects.get(action="stage_update")
    assert event.before["reviewers_required"] == 2 and event.after["reviewers_required"] == 3


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"reviewers_required": 0}, "Between 1 and 10"),
        ({"route_include": "title"}, "Select a valid choice"),
        ({"name": ""}, "This field is required."),
    ],
)
def test_stage_bad_input(seeded, client_for, htmx_headers, changes, message):
    title = seeded.stages.get(key="title")
    response = client_for("owner").post(
        url("protocol_stage", seeded, title.pk), stage_data(title, **changes), **htmx_headers
    )
    assert response.status_code == 422 and message in response.content.decode()
    assert Stage.objects.get(pk=title.pk).reviewers_required == 2
    assert not AuditEvent.objects.filter(action="stage_update").exists()


# ----- Table 1 ---------------------------------------------------------------------------


def test_cell_editor_and_totals(seeded, client_for, htmx_headers):
    string = SearchString.objects.get(review=seeded)
    ieee = Source.objects.get(review=seeded, name="IEEE")
    client = client_for("owner")
    editor = client.get(url("protocol_search_cell", seeded, string.pk, ieee.pk), **htmx_headers)
    assert 'name="cell-hits_reported"' in editor.content.decode()
    response = client.post(
        url("protocol_search_cell", seeded, string.pk, ieee.pk),
        {"cell-hits_reported": "1200", "cell-run_on": "2021-07-31"},
        **htmx_headers,
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert '<td class="text-end" id="table1-grand-total">1,207</td>' in html
    run = SearchRun.objects.get(source=ieee)
    assert (run.hits_reported, run.run_on.isoformat()) == (1200, "2021-07-31")
    assert AuditEvent.objects.filter(action="search_run_set", object_id=str(run.pk)).exists()


def test_cell_cleared_removes_the_run(seeded, client_for, htmx_headers):
    string = SearchString.objects.get(review=seeded)
    acm = Source.objects.get(review=seeded, name="ACM")
    client_for("owner").post(
        url("protocol_search_cell", seeded, string.pk, acm.pk),
        {"cell-hits_reported": "", "version": "1"},
        **htmx_headers,
    )
    assert not SearchRun.objects.exists()
    assert AuditEvent.objects.filter(action="search_run_delete").exists()


def test_cell_bad_input(seeded, client_for, htmx_headers):
    string = SearchString.objects.get(review=seeded)
    acm = Source.objects.get(review=seeded, name="ACM")
    response = client_for("owner").post(
        url("protocol_search_cell", seeded, string.pk, acm.pk),
        {"cell-hits_reported": "-4", "cell-run_on": "yesterday"},
        **htmx_headers,
    )
    html = response.content.decode()
    assert response.status_code == 422
    assert "greater than or equal to 0" in html and "Enter a valid date" in html
    assert SearchRun.objects.get().hits_reported == 7


# ----- team ------------------------------------------------------------------------------


def _joined(review, cast, username, role):
    """A member who joined the way people join now: invited, then accepting."""
    invitation = invitation_create(
        review=review, by=cast["owner"], invitee=username, role=role, site_url="http://t/"
    )
    return invitation_accept(invitation=invitation, user=cast[username])


def test_team_section_offers_invitations_and_no_direct_add(seeded, client_for):
    client = client_for("owner")
    html = client.get(url("protocol_detail", seeded)).content.decode()
    team = html[html.index('id="team"') :]
    assert reverse("screening:invitation_list", args=[seeded.slug]) in team
    assert "Invite people" in team
    assert 'name="username"' not in html and "Add member" not in html
    old = f"/r/{seeded.slug}/protocol/team/"
    before = Membership.objects.count()
    assert client.post(old, {"username": "outsider", "role": "owner"}).status_code == 404
    assert client.get(old).status_code == 404
    assert Membership.objects.count() == before


def test_member_change_remove(seeded, client_for, htmx_headers, cast):
    membership = _joined(seeded, cast, "outsider", "viewer")
    client = client_for("owner")
    page = client.get(url("protocol_detail", seeded)).content.decode()
    assert 'data-member="outsider"' in page
    changed = client.post(
        url("protocol_member", seeded, membership.pk),
        {f"m{membership.pk}-role": "reviewer", f"m{membership.pk}-can_import": "on"},
        **htmx_headers,
    )
    assert changed.status_code == 200
    membership.refresh_from_db()
    assert membership.role == "reviewer"
    removed = client.post(url("protocol_member_remove", seeded, membership.pk), **htmx_headers)
    assert removed.status_code == 200
    assert not Membership.objects.filter(pk=membership.pk).exists()
    actions = list(
        AuditEvent.objects.filter(action__startswith="member_").values_list("action", flat=True)
    )
    assert sorted(actions) == ["member_remove", "member_update"]


def test_last_owner_cannot_be_removed_or_demoted(seeded, client_for, htmx_headers, cast):
    owner = Membership.objects.get(review=seeded, user=cast["owner"])
    client = client_for("owner")
    removed = client.post(url("protocol_member_remove", seeded, owner.pk), **htmx_headers)
    assert removed.status_code == 422 and "last owner" in removed.content.decode()
    demoted = client.post(
        url("protocol_member", seeded, owner.pk), {f"m{owner.pk}-role": "viewer"}, **htmx_headers
    )
    assert demoted.status_code == 422 and "at least one owner" in demoted.content.decode()
    owner.refresh_from_db()
    assert owner.role == "owner"


def test_owner_may_leave_when_another_owner_remains(seeded, client_for, htmx_headers, cast):
    Membership.objects.filter(review=seeded, user=cast["reviewer"]).update(role="owner")
    me = Membership.objects.get(review=seeded, user=cast["owner"])
    response = client_for("owner").post(
        url("protocol_member_remove", seeded, me.pk), **htmx_headers
    )
    assert response.status_code == 204
    assert response["HX-Redirect"] == reverse("screening:review_list")


# ----- protocol file ---------------------------------------------------------------------


def upload(data, name="protocol.json"):
    content = data if isinstance(data, bytes) else json.dumps(data).encode()
    handle = io.BytesIO(content)
    handle.name = name
    return handle


def test_export_downloads_json(seeded, client_for):
    response = client_for("viewer").get(url("protocol_export", seeded))
    assert response["Content-Type"] == "application/json"
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["format"] == "slrweb-protocol"
    assert [c["code"] for c in data["protocol"]["criteria"]] == [
        "INVALID-TYPE",
        "DUPLICATE",
        "IC1",
        "IC2",
        "EC1",
    ]
    assert data["search_runs"][0]["hits_reported"] == 7


def test_import_replaces_protocol(seeded, client_for, htmx_headers, cast):
    data = json.loads(client_for("owner").get(url("protocol_export", seeded)).content)
    target = services.protocol_item_create  # a second review owned by the same owner
    from screening.services.reviews import review_create

    other = review_create(slug="other", title="Other", owner=cast["owner"])
    target(
        review=other,
        actor=cast["owner"],
        spec=services.ORDERED_LISTS["inclusion"],
        values={"code": "OLD", "text": "gone"},
    )
    response = client_for("owner").post(
        url("protocol_import", other), {"file": upload(data)}, **htmx_headers
    )
    assert response.status_code == 204
    assert response["HX-Redirect"] == url("protocol_detail", other)
    other.refresh_from_db()
    assert other.title == seeded.title
    assert not other.criteria.filter(code="OLD").exists()
    assert set(other.criteria.values_list("code", flat=True)) == set(
        seeded.criteria.values_list("code", flat=True)
    )
    assert other.search_runs.get().hits_reported == 7
    assert AuditEvent.objects.filter(review=other, action="protocol_import").exists()


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda d: b"{not json", "not a JSON file"),
        (lambda d: {**d, "format": "other"}, "'format' must be"),
        (lambda d: {**d, "version": 9}, "unsupported version"),
        (
            lambda d: {**d, "search_runs": [{**d["search_runs"][0], "source": 999}]},
            "not in the file",
        ),
        (
            lambda d: {
                **d,
                "protocol": {**d["protocol"], "criteria": d["protocol"]["criteria"] * 2},
            },
            "appears twice",
        ),
        (
            lambda d: {
                **d,
                "protocol": {
                    **d["protocol"],
                    "stages": [{**s, "is_entry": False} for s in d["protocol"]["stages"]],
                },
            },
            "entry stage",
        ),
    ],
)
def test_import_bad_file_changes_nothing(seeded, client_for, htmx_headers, mutate, message):
    data = json.loads(client_for("owner").get(url("protocol_export", seeded)).content)
    before = json.loads(client_for("owner").get(url("protocol_export", seeded)).content)
    response = client_for("owner").post(
        url("protocol_import", seeded), {"file": upload(mutate(data))}, **htmx_headers
    )
    assert response.status_code == 422
    assert message in unescape(response.content.decode())
    after = json.loads(client_for("owner").get(url("protocol_export", seeded)).content)
    assert after == before
    assert not AuditEvent.objects.filter(action="protocol_import").exists()


def _nested(depth: int):
    value: dict = {}
    for _ in range(depth):
        value = {"x": value}
    return value


@pytest.mark.parametrize(
    "mutate,path",
    [
        (lambda d: d["protocol"]["criteria"][0].update(kind="bogus"), "protocol.criteria[0].kind"),
        (lambda d: d["protocol"]["criteria"][1].update(code="C" * 21), "protocol.criteria[1].code"),
        (lambda d: d["search_runs"][0].update(hits_reported=-7), "search_runs[0].hits_reported"),
        (
            lambda d: d["protocol"]["stages"][0].update(consensus_rule="loudest"),
            "protocol.stages[0].consensus_rule",
        ),
        (
            lambda d: d["protocol"]["review"].update(screening_mode=_nested(50)),
            "protocol.review.screening_mode",
        ),
    ],
)
def test_protocol_import_refuses_an_invalid_value_with_its_json_path(
    seeded, client_for, htmx_headers, mutate, path
):
    client = client_for("owner")
    data = json.loads(client.get(url("protocol_export", seeded)).content)
    mutate(data)
    before = json.loads(client.get(url("protocol_export", seeded)).content)
    response = client.post(url("protocol_import", seeded), {"file": upload(data)}, **htmx_headers)
    assert response.status_code == 422
    assert path in unescape(response.content.decode())
    assert json.loads(client.get(url("protocol_export", seeded)).content) == before


def test_protocol_import_of_deeply_nested_json_is_refused_not_a_500(
    seeded, client_for, htmx_headers
):
    deep = io.BytesIO(b"[" * 100_000 + b"]" * 100_000)
    deep.name = "deep.json"
    response = client_for("owner").post(
        url("protocol_import", seeded), {"file": deep}, **htmx_headers
    )
    assert response.status_code == 422
    assert "nested too deeply" in response.content.decode()


def test_import_refused_once_records_exist(seeded, client_for, htmx_headers):
    from screening.models import ImportBatch

    ImportBatch.objects.create(
        review=seeded, source=Source.objects.first(), original_name="a.ris", sha256="0" * 64
    )
    data = json.loads(client_for("owner").get(url("protocol_export", seeded)).content)
    response = client_for("owner").post(
        url("protocol_import", seeded), {"file": upload(data)}, **htmx_headers
    )
    assert response.status_code == 422 and "can no longer be replaced" in response.content.decode()


def test_research_question_theme_round_trip(seeded):
    rq = ResearchQuestion.objects.get(review=seeded)
    assert (rq.code, rq.theme) == ("RQ1", "Theme")


def test_editors_are_not_served_to_viewers(seeded, client_for, htmx_headers):
    ic1 = criterion(seeded, "IC1")
    string = SearchString.objects.get(review=seeded)
    source = Source.objects.get(review=seeded, name="ACM")
    editors = [
        url("protocol_item", seeded, "inclusion", ic1.pk),
        url("protocol_stage", seeded, seeded.stages.first().pk),
        url("protocol_search_cell", seeded, string.pk, source.pk),
        url("protocol_settings", seeded, "basics") + "?edit=1",
    ]
    for editor in editors:
        assert client_for("viewer").get(editor, **htmx_headers).status_code == 403
        assert client_for("outsider").get(editor, **htmx_headers).status_code == 404
        assert client_for("owner").get(editor, **htmx_headers).status_code == 200


def test_research_question_heading_count_follows_htmx_adds_and_deletes(seeded, client_for):
    """The counted heading outside the list's fragment is updated out of band (bug 11)."""
    client = client_for("owner")
    headers = {"HTTP_HX_REQUEST": "true"}
    added = client.post(
        url("protocol_list", seeded, "research-questions"),
        {
            "new-research-questions-code": "RQ2",
            "new-research-questions-text": "How?",
            "new-research-questions-theme": "",
        },
        **headers,
    ).content.decode()
    assert '<small id="count-research-questions"' in added
    assert 'hx-swap-oob="true">(2)</small>' in added
    rq2 = ResearchQuestion.objects.get(review=seeded, code="RQ2")
    deleted = client.post(
        url("protocol_item_delete", seeded, "research-questions", rq2.pk),
        {"version": "1"},
        **headers,
    ).content.decode()
    assert 'hx-swap-oob="true">(1)</small>' in deleted
    page = client_for("viewer").get(url("protocol_detail", seeded)).content.decode()
    assert 'id="count-research-questions" class="text-body-secondary fw-normal">(1)' in page
    assert page.count('id="count-research-questions"') == 1


@pytest.mark.parametrize("key", list(services.ORDERED_LISTS))
def test_every_counted_list_heading_follows_an_htmx_add_and_a_reload(seeded, client_for, key):
    """Each list's heading count is the stored count in the htmx answer and after a reload, for
    the owner who added and for a viewer (bug 11, for every counted heading)."""
    spec = services.ORDERED_LISTS[key]
    values = {f"new-{key}-{name}": f"Z9 added {name}" for name in spec.fields}
    answer = client_for("owner").post(
        url("protocol_list", seeded, key), values, HTTP_HX_REQUEST="true"
    )
    assert answer.status_code == 200, answer.content.decode()[:400]
    stored = spec.queryset(seeded).count()
    heading = f'{spec.title} <small class="text-body-secondary fw-normal">({stored})</small>'
    assert heading in answer.content.decode()
    for role in ("owner", "viewer"):
        page = client_for(role).get(url("protocol_detail", seeded)).content.decode()
        assert heading in page


def test_viewer_is_not_offered_may_import(seeded, client_for, cast):
    viewer = Membership.objects.get(review=seeded, user=cast["viewer"])
    reviewer = Membership.objects.get(review=seeded, user=cast["reviewer"])
    html = client_for("owner").get(url("protocol_detail", seeded)).content.decode()
    assert f'name="m{reviewer.pk}-can_import"' in html
    assert f'name="m{viewer.pk}-can_import"' not in html


def test_server_refuses_may_import_for_a_viewer(seeded, client_for, htmx_headers, cast):
    reviewer = Membership.objects.get(review=seeded, user=cast["reviewer"])
    response = client_for("owner").post(
        url("protocol_member", seeded, reviewer.pk),
        {f"m{reviewer.pk}-role": "viewer", f"m{reviewer.pk}-can_import": "on"},
        **htmx_headers,
    )
    assert response.status_code == 422
    assert "cannot be a viewer who may import" in unescape(response.content.decode())
    reviewer.refresh_from_db()
    assert (reviewer.role, reviewer.can_import) == ("reviewer", True)
    assert not AuditEvent.objects.filter(action="member_update").exists()
    # Demoted without "may import": stored, and the viewer's row offers no import right.
    client_for("owner").post(
        url("protocol_member", seeded, reviewer.pk),
        {f"m{reviewer.pk}-role": "viewer"},
        **htmx_headers,
    )
    reviewer.refresh_from_db()
    assert (reviewer.role, reviewer.can_import) == ("viewer", False)
    page = client_for("owner").get(url("protocol_detail", seeded)).content.decode()
    assert f'name="m{reviewer.pk}-can_import"' not in page


def test_member_joining_as_viewer_may_not_import(seeded, cast):
    _joined(seeded, cast, "outsider", "viewer")
    membership = Membership.objects.get(review=seeded, user=cast["outsider"])
    assert (membership.role, membership.can_import) == ("viewer", False)
