"""The protocol page: read-only for every member, edited inline (htmx) by the review's owners.

Each section of the page is one fragment with one URL. A write answers with the section's
fragment (htmx) or redirects back to the page (plain form post); invalid input answers 422 with
the form and its errors, and nothing is saved.
"""

import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ..access import Need, review_access
from ..forms import (
    REVIEW_SETTINGS_FORMS,
    MemberUpdateForm,
    MoveForm,
    ProtocolImportForm,
    SearchRunCellForm,
    StageForm,
    protocol_item_form_class,
)
from ..models import Membership, SearchString, Source, Stage
from ..selectors.protocol import (
    audit_recent,
    search_run_latest,
    search_run_matrix,
    team_members,
)
from ..services import protocol as services
from ..services.stale import StaleWrite
from .stale import stale_guard, stale_write_response

INVALID = 422
# Lists whose changes reshape Table 1: the page's Table 1 reloads itself on this event.
SEARCH_LISTS = {"sources", "search-strings"}
SEARCHES_CHANGED = "searches-changed"


def _spec(list_key: str) -> services.OrderedList:
    spec = services.ORDERED_LISTS.get(list_key)
    if spec is None:
        raise Http404("No such list.")
    return spec


def _list_key(spec) -> str:
    """The section's name in the page context (and, with dashes, its element id)."""
    return "list_" + spec.key.replace("-", "_")


def _autofocus(form):
    """Inline editors open with the cursor in their first field (htmx honours autofocus)."""
    first = next(iter(form.fields.values()), None)
    if first is not None:
        first.widget.attrs["autofocus"] = True
    return form


def _focus_first_error(section: dict) -> None:
    """A re-shown invalid form opens with the cursor in its first invalid field."""
    for key in ("form", "edit_form"):
        form = section.get(key)
        if form is None or not form.is_bound or not form.errors:
            continue
        names = [name for name in form.fields if name in form.errors] or list(form.fields)
        form.fields[names[0]].widget.attrs["autofocus"] = True
        return


def _errors(error: ValidationError) -> list[str]:
    return error.messages


def _stale(request, error: StaleWrite, slot: str):
    """The 409 answer, shown in the section's message slot so the user's form stays open."""
    return stale_write_response(request, error, target=f"#stale-{slot}")


# ----- section contexts ------------------------------------------------------------------


def _list_section(
    access, spec, *, form=None, edit_id=None, edit_form=None, edit_version=None, error=None
) -> dict:
    form_class = protocol_item_form_class(spec)
    items = list(spec.queryset(access.review))
    return {
        "template": "screening/protocol/_list.html",
        "spec": spec,
        "headers": [spec.model._meta.get_field(name).verbose_name for name in spec.fields],
        "rows": [(item, [getattr(item, name) for name in spec.fields]) for item in items],
        "last_index": len(items) - 1,
        "form": form or form_class(review=access.review, spec=spec, prefix=f"new-{spec.key}"),
        "edit_id": edit_id,
        "edit_form": edit_form,
        # The version the editor was opened with (kept through a re-shown invalid form).
        "edit_version": edit_version,
        "error": error,
    }


def _settings_section(access, name, *, form=None, version=None, error=None) -> dict:
    return {
        "template": "screening/protocol/_settings.html",
        "name": name,
        "form": form,
        "version": access.review.version if version is None else version,
        "error": error,
    }


def _stages_section(access, *, edit_id=None, edit_form=None, edit_version=None, error=None) -> dict:
    stages = list(access.review.stages.all())
    names = {stage.key: stage.name for stage in stages}
    names.update({Stage.INCLUDED: "Included", Stage.EXCLUDED: "Excluded"})
    return {
        "template": "screening/protocol/_stages.html",
        "stages": [
            (
                stage,
                [
                    names.get(getattr(stage, route), getattr(stage, route))
                    for route in services.ROUTES
                ],
            )
            for stage in stages
        ],
        "edit_id": edit_id,
        "edit_form": edit_form,
        "edit_version": edit_version,
        "error": error,
    }


def _searches_section(access, *, cell=None, form=None, version=0, error=None) -> dict:
    return {
        "template": "screening/protocol/_searches.html",
        "table1": search_run_matrix(review=access.review),
        "cell": cell,
        "form": form,
        "version": version,  # of the run the cell editor shows (0: none)
        "error": error,
    }


def _team_section(access, *, error=None, error_member=None) -> dict:
    # Nobody is added here: people join by accepting an invitation (views/invitations.py).
    members = list(team_members(review=access.review))
    return {
        "template": "screening/protocol/_team.html",
        "members": [
            (
                m,
                MemberUpdateForm(
                    initial={"role": m.role, "can_import": m.can_import}, prefix=f"m{m.pk}"
                ),
            )
            for m in members
        ],
        "error": error,
        "error_member": error_member,
    }


def _transfer_section(access, *, form=None, error=None) -> dict:
    return {
        "template": "screening/protocol/_transfer.html",
        "form": form or ProtocolImportForm(),
        "error": error,
        "has_records": access.review.records.exists() or access.review.batches.exists(),
    }


def _page_sections(access, **overrides) -> dict:
    sections = {
        "basics": _settings_section(access, "basics"),
        "screening": _settings_section(access, "screening"),
        "quality": _settings_section(access, "quality"),
        "stages": _stages_section(access),
        "searches": _searches_section(access),
        "team": _team_section(access),
        "transfer": _transfer_section(access),
    }
    for key in services.ORDERED_LISTS:
        spec = services.ORDERED_LISTS[key]
        sections[_list_key(spec)] = _list_section(access, spec)
    sections.update(overrides)
    return sections


def _context(access, section=None) -> dict:
    return {
        "access": access,
        "review": access.review,
        "can_edit": access.is_owner,
        "section": section,
    }


def _render_page(request, access, status=200, **overrides):
    context = _context(access)
    context["sections"] = _page_sections(access, **overrides)
    context["audit_events"] = audit_recent(review=access.review)
    return render(request, "screening/protocol/detail.html", context, status=status)


def _respond(request, access, key: str, section: dict, *, status=200, anchor=""):
    """The section's fragment for htmx, else the page (or a redirect after a saved post)."""
    if status == INVALID:
        _focus_first_error(section)
    if request.htmx:
        return render(request, section["template"], _context(access, section), status=status)
    if request.method == "POST" and status < 400:
        url = reverse("screening:protocol_detail", args=[access.review.slug])
        return redirect(f"{url}#{anchor or key.replace('_', '-')}")
    return _render_page(request, access, status=status, **{key: section})


# ----- page ------------------------------------------------------------------------------


@require_GET
@login_required
def protocol_detail(request, slug):
    access = review_access(request, slug)
    return _render_page(request, access)


# ----- ordered lists ---------------------------------------------------------------------


def _list_changed(request, access, spec):
    response = _respond(request, access, _list_key(spec), _list_section(access, spec))
    if spec.key in SEARCH_LISTS:
        response["HX-Trigger"] = SEARCHES_CHANGED
    return response


@require_http_methods(["GET", "POST"])
@login_required
def protocol_list(request, slug, list_key):
    spec = _spec(list_key)
    if request.method == "GET":
        access = review_access(request, slug)
        return _respond(request, access, _list_key(spec), _list_section(access, spec))
    access = review_access(request, slug, Need.OWN)
    form = protocol_item_form_class(spec)(
        request.POST, review=access.review, spec=spec, prefix=f"new-{spec.key}"
    )
    if form.is_valid():
        try:
            services.protocol_item_create(
                review=access.review, actor=request.user, spec=spec, values=form.cleaned_data
            )
        except ValidationError as error:
            form.add_error(None, error)
    if form.errors:
        section = _list_section(access, spec, form=form)
        return _respond(request, access, _list_key(spec), section, status=INVALID)
    return _list_changed(request, access, spec)


@require_http_methods(["GET", "POST"])
@login_required
def protocol_item(request, slug, list_key, pk):
    """GET: the list with this item's inline editor; POST: save the item."""
    spec = _spec(list_key)
    access = review_access(request, slug, Need.OWN)
    item = get_object_or_404(spec.queryset(access.review), pk=pk)
    form_class = protocol_item_form_class(spec)
    key = _list_key(spec)
    if request.method == "GET":
        form = _autofocus(
            form_class(instance=item, review=access.review, spec=spec, prefix=f"edit-{pk}")
        )
        section = _list_section(access, spec, edit_id=pk, edit_form=form, edit_version=item.version)
        return _respond(request, access, key, section)
    seen_version, force = stale_guard(request)
    form = form_class(
        request.POST, instance=item, review=access.review, spec=spec, prefix=f"edit-{pk}"
    )
    if form.is_valid():
        try:
            services.protocol_item_update(
                review=access.review,
                actor=request.user,
                spec=spec,
                item=item,
                values=form.cleaned_data,
                seen_version=seen_version,
                force=force,
            )
        except StaleWrite as error:
            return _stale(request, error, f"list-{spec.key}")
        except ValidationError as error:
            form.add_error(None, error)
    if form.errors:
        section = _list_section(access, spec, edit_id=pk, edit_form=form, edit_version=seen_version)
        return _respond(request, access, key, section, status=INVALID)
    return _list_changed(request, access, spec)


@require_POST
@login_required
def protocol_item_delete(request, slug, list_key, pk):
    spec = _spec(list_key)
    access = review_access(request, slug, Need.OWN)
    item = get_object_or_404(spec.queryset(access.review), pk=pk)
    key = _list_key(spec)
    seen_version, force = stale_guard(request)
    try:
        services.protocol_item_delete(
            review=access.review,
            actor=request.user,
            spec=spec,
            item=item,
            seen_version=seen_version,
            force=force,
        )
    except StaleWrite as error:
        return _stale(request, error, f"list-{spec.key}")
    except ValidationError as error:
        section = _list_section(access, spec, error=_errors(error))
        return _respond(request, access, key, section, status=INVALID)
    return _list_changed(request, access, spec)


@require_POST
@login_required
def protocol_item_move(request, slug, list_key, pk):
    spec = _spec(list_key)
    access = review_access(request, slug, Need.OWN)
    item = get_object_or_404(spec.queryset(access.review), pk=pk)
    key = _list_key(spec)
    form = MoveForm(request.POST)
    if not form.is_valid():
        section = _list_section(access, spec, error=["Choose to move up or down."])
        return _respond(request, access, key, section, status=INVALID)
    services.protocol_item_move(
        review=access.review,
        actor=request.user,
        spec=spec,
        item=item,
        direction=form.cleaned_data["direction"],
    )
    return _list_changed(request, access, spec)


# ----- review settings -------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@login_required
def protocol_settings(request, slug, section):
    """GET: the settings shown (or, with ?edit, their form); POST: save them."""
    form_class = REVIEW_SETTINGS_FORMS.get(section)
    if form_class is None:
        raise Http404("No such settings.")
    if request.method == "GET" and "edit" not in request.GET:
        access = review_access(request, slug)
        return _respond(request, access, section, _settings_section(access, section))
    access = review_access(request, slug, Need.OWN)
    if request.method == "GET":
        form = _autofocus(form_class(instance=access.review, prefix=section))
        return _respond(request, access, section, _settings_section(access, section, form=form))
    mode_before = access.review.screening_mode
    seen_version, force = stale_guard(request)
    form = form_class(request.POST, instance=access.review, prefix=section)
    if form.is_valid():
        try:
            services.review_update(
                review=access.review,
                actor=request.user,
                values=form.cleaned_data,
                seen_version=seen_version,
                force=force,
            )
        except StaleWrite as error:
            return _stale(request, error, section)
        except ValidationError as error:
            form.add_error(None, error)
    if form.errors:
        # The form wrote its values onto the review object; show the stored ones elsewhere.
        access.review.refresh_from_db()
        section_ctx = _settings_section(access, section, form=form, version=seen_version or 0)
        return _respond(request, access, section, section_ctx, status=INVALID)
    access.review.refresh_from_db()
    if access.review.screening_mode != mode_before and request.htmx:
        # A new screening mode rebuilt the stages: reload the page so both sections agree.
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    return _respond(request, access, section, _settings_section(access, section))


# ----- stages ----------------------------------------------------------------------------


def _stage_form(access, stage, data=None):
    stages = list(access.review.stages.all())
    return StageForm(
        data,
        instance=stage,
        prefix=f"stage-{stage.pk}",
        route_choices=services.stage_route_choices(stage=stage, stages=stages),
    )


@require_GET
@login_required
def protocol_stages(request, slug):
    access = review_access(request, slug)
    return _respond(request, access, "stages", _stages_section(access))


@require_http_methods(["GET", "POST"])
@login_required
def protocol_stage(request, slug, pk):
    access = review_access(request, slug, Need.OWN)
    stage = get_object_or_404(Stage, review=access.review, pk=pk)
    if request.method == "GET":
        form = _autofocus(_stage_form(access, stage))
        section = _stages_section(access, edit_id=pk, edit_form=form, edit_version=stage.version)
        return _respond(request, access, "stages", section)
    seen_version, force = stale_guard(request)
    form = _stage_form(access, stage, request.POST)
    if form.is_valid():
        try:
            services.stage_update(
                review=access.review,
                actor=request.user,
                stage=stage,
                values=form.cleaned_data,
                seen_version=seen_version,
                force=force,
            )
        except StaleWrite as error:
            return _stale(request, error, "stages")
        except ValidationError as error:
            form.add_error(None, error)
    if form.errors:
        section = _stages_section(
            access, edit_id=pk, edit_form=form, edit_version=seen_version or 0
        )
        return _respond(request, access, "stages", section, status=INVALID)
    return _respond(request, access, "stages", _stages_section(access))


# ----- searches (Table 1) ----------------------------------------------------------------


@require_GET
@login_required
def protocol_searches(request, slug):
    access = review_access(request, slug)
    return _respond(request, access, "searches", _searches_section(access))


@require_http_methods(["GET", "POST"])
@login_required
def protocol_search_cell(request, slug, string_id, source_id):
    """One cell of Table 1: GET its inline editor, POST the hits of that string in that source."""
    access = review_access(request, slug, Need.OWN)
    search_string = get_object_or_404(SearchString, review=access.review, pk=string_id)
    source = get_object_or_404(Source, review=access.review, pk=source_id)
    cell = (search_string.pk, source.pk)
    if request.method == "GET":
        run = search_run_latest(review=access.review, search_string=search_string, source=source)
        initial = (
            {
                "hits_reported": run.hits_reported,
                "run_on": run.run_on,
                "shown_run_on": run.run_on,
                "note": run.note,
            }
            if run
            else {"run_on": None}
        )
        form = _autofocus(SearchRunCellForm(initial=initial, prefix="cell"))
        section = _searches_section(access, cell=cell, form=form, version=run.version if run else 0)
        return _respond(request, access, "searches", section)
    seen_version, force = stale_guard(request)
    form = SearchRunCellForm(request.POST, prefix="cell")
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.search_run_set(
                review=access.review,
                actor=request.user,
                search_string=search_string,
                source=source,
                run_on=data["run_on"],
                hits_reported=data["hits_reported"],
                note=data["note"],
                # The version is that of the run shown; another date is a run not seen yet.
                seen_version=seen_version if data["run_on"] == data["shown_run_on"] else 0,
                force=force,
            )
        except StaleWrite as error:
            return _stale(request, error, "searches")
        except ValidationError as error:
            form.add_error(None, error)
    if form.errors:
        section = _searches_section(access, cell=cell, form=form, version=seen_version or 0)
        return _respond(request, access, "searches", section, status=INVALID)
    return _respond(request, access, "searches", _searches_section(access))


# ----- team ------------------------------------------------------------------------------


@require_POST
@login_required
def protocol_member(request, slug, pk):
    access = review_access(request, slug, Need.OWN)
    membership = get_object_or_404(Membership, review=access.review, pk=pk)
    form = MemberUpdateForm(request.POST, prefix=f"m{pk}")
    error = None
    if form.is_valid():
        try:
            services.member_update(
                review=access.review,
                actor=request.user,
                membership=membership,
                role=form.cleaned_data["role"],
                can_import=form.cleaned_data["can_import"],
            )
        except ValidationError as exc:
            error = _errors(exc)
    else:
        error = ["Choose a role: owner, reviewer or viewer."]
    if error:
        section = _team_section(access, error=error, error_member=pk)
        return _respond(request, access, "team", section, status=INVALID)
    return _respond(request, access, "team", _team_section(access))


@require_POST
@login_required
def protocol_member_remove(request, slug, pk):
    access = review_access(request, slug, Need.OWN)
    membership = get_object_or_404(Membership, review=access.review, pk=pk)
    try:
        services.member_remove(review=access.review, actor=request.user, membership=membership)
    except ValidationError as error:
        section = _team_section(access, error=_errors(error), error_member=pk)
        return _respond(request, access, "team", section, status=INVALID)
    if membership.user_id == request.user.pk:
        # Owners may leave a review that keeps another owner; the page is no longer theirs.
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = reverse("screening:review_list")
            return response
        return redirect("screening:review_list")
    return _respond(request, access, "team", _team_section(access))


# ----- export / import -------------------------------------------------------------------


@require_GET
@login_required
def protocol_export(request, slug):
    access = review_access(request, slug)
    data = services.protocol_export(review=access.review)
    response = HttpResponse(
        json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="{access.review.slug}-protocol.json"'
    return response


@require_POST
@login_required
def protocol_import(request, slug):
    access = review_access(request, slug, Need.OWN)
    form = ProtocolImportForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            services.protocol_import(
                review=access.review, actor=request.user, data=form.cleaned_data["file"]
            )
        except ValidationError as error:
            form.add_error("file", error)
    if form.errors:
        return _respond(
            request, access, "transfer", _transfer_section(access, form=form), status=INVALID
        )
    url = reverse("screening:protocol_detail", args=[access.review.slug])
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


urlpatterns = [
    path("", protocol_detail, name="protocol_detail"),
    path("lists/<slug:list_key>/", protocol_list, name="protocol_list"),
    path("lists/<slug:list_key>/<int:pk>/", protocol_item, name="protocol_item"),
    path(
        "lists/<slug:list_key>/<int:pk>/delete/", protocol_item_delete, name="protocol_item_delete"
    ),
    path("lists/<slug:list_key>/<int:pk>/move/", protocol_item_move, name="protocol_item_move"),
    path("settings/<slug:section>/", protocol_settings, name="protocol_settings"),
    path("stages/", protocol_stages, name="protocol_stages"),
    path("stages/<int:pk>/", protocol_stage, name="protocol_stage"),
    path("searches/", protocol_searches, name="protocol_searches"),
    path(
        "searches/<int:string_id>/<int:source_id>/",
        protocol_search_cell,
        name="protocol_search_cell",
    ),
    path("team/<int:pk>/", protocol_member, name="protocol_member"),
    path("team/<int:pk>/delete/", protocol_member_remove, name="protocol_member_remove"),
    path("export/", protocol_export, name="protocol_export"),
    path("import/", protocol_import, name="protocol_import"),
]
