"""The studies page (search, filters, bulk tagging) and the study page (records, provenance,
decisions, notes, tags)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ..access import Need, review_access
from ..forms.studies import BulkTagForm, NoteForm, StudyFilterForm, TagForm
from ..models import Stage, Study, StudyNote, Tag
from ..selectors.study_list import (
    StudyFilters,
    studies_listed,
    studies_not_searchable,
    studies_page,
    study_detail,
    study_page_rows,
    tags_visible,
)
from ..services.notes import (
    NOTE_MAX_LENGTH,
    note_add,
    note_delete,
    note_edit,
    study_tag_remove,
    study_tags_apply,
    tag_create,
    tag_delete,
)
from ..services.stale import StaleWrite
from .stale import stale_guard, stale_write_response


def _study(review, study_id) -> Study:
    return get_object_or_404(
        Study.objects.select_related("current_stage", "full_text"), pk=study_id, review=review
    )


def _back(request, fallback: str):
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(fallback)


@require_GET
@login_required
def studies_list(request, slug):
    access = review_access(request, slug)
    review = access.review
    form = StudyFilterForm(request.GET or None, review=review, user=request.user)
    context = {"access": access, "review": review, "form": form, "rows": None}
    status = 200
    if not request.GET or form.is_valid():
        filters = form.filters() if request.GET else StudyFilters()
        page = studies_page(
            studies_listed(review=review, user=request.user, filters=filters),
            request.GET.get("page"),
            by_relevance=filters.by_relevance,
        )
        query = request.GET.copy()
        query.pop("page", None)
        context |= {
            "page": page,
            "rows": study_page_rows(review=review, user=request.user, page=page),
            "query": query.urlencode(),
            "bulk_tags": tags_visible(review=review, user=request.user) if access.is_owner else [],
            "not_searchable": filters.search and studies_not_searchable(review=review),
        }
    else:
        status = 400
    template = "screening/studies/_results.html" if request.htmx else "screening/studies/list.html"
    return render(request, template, context, status=status)


@require_POST
@login_required
def studies_bulk_tag(request, slug):
    access = review_access(request, slug, Need.OWN)
    list_url = reverse("screening:studies_list", args=[slug])
    form = BulkTagForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Select at least one study and a tag to apply.")
        return _back(request, list_url)
    try:
        added = study_tags_apply(
            review=access.review,
            tag_id=form.cleaned_data["tag"],
            study_ids=form.cleaned_data["study"],
            user=request.user,
        )
    except Tag.DoesNotExist:
        messages.error(request, "That tag no longer exists.")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Tag applied to {added} more studies.")
    return _back(request, list_url)


@require_http_methods(["GET", "POST"])
@login_required
def tags_manage(request, slug):
    access = review_access(request, slug, Need.READ if request.method == "GET" else Need.WRITE)
    review = access.review
    form = TagForm(request.POST or None, initial={"private": not access.is_owner})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                tag_create(
                    review=review,
                    user=request.user,
                    name=form.cleaned_data["name"],
                    colour=form.cleaned_data["colour"],
                    private=form.cleaned_data["private"] or not access.is_owner,
                )
            except ValidationError as error:
                form.add_error("name", error)
            else:
                messages.success(request, f"Tag “{form.cleaned_data['name']}” created.")
                return redirect("screening:tags_manage", slug)
        status = 422
    context = {
        "access": access,
        "review": review,
        "form": form,
        "tags": tags_visible(review=review, user=request.user),
    }
    return render(request, "screening/studies/tags.html", context, status=status)


@require_POST
@login_required
def tag_delete_view(request, slug, tag_id):
    access = review_access(request, slug, Need.WRITE)
    try:
        tag_delete(review=access.review, tag_id=tag_id, user=request.user)
    except Tag.DoesNotExist as error:
        raise Http404("No such tag.") from error
    messages.success(request, "Tag deleted.")
    return redirect("screening:tags_manage", slug)


def _study_context(request, access, study, note_form=None) -> dict:
    review = access.review
    hide_abstract = (
        study.current_stage is not None
        and study.current_stage.kind == Stage.Kind.TITLE
        and study.outcome == Study.Outcome.SCREENING
    )
    return {
        "access": access,
        "review": review,
        "study": study,
        "hide_abstract": hide_abstract,
        "note_form": note_form or NoteForm(),
        **study_detail(review=review, study=study, user=request.user),
    }


def _study_render(request, access, study, *, fragment: str, note_form=None, status=200):
    template = fragment if request.htmx else "screening/studies/study.html"
    context = _study_context(request, access, study, note_form)
    return render(request, template, context, status=status)


@require_GET
@login_required
def study_page(request, slug, study_id):
    access = review_access(request, slug)
    study = _study(access.review, study_id)
    return _study_render(request, access, study, fragment="screening/studies/_study_body.html")


NOTES = "screening/studies/_notes.html"
TAGS = "screening/studies/_tags.html"


@require_POST
@login_required
def study_note_add(request, slug, study_id):
    access = review_access(request, slug, Need.WRITE)
    study = _study(access.review, study_id)
    form = NoteForm(request.POST)
    if not form.is_valid():
        return _study_render(request, access, study, fragment=NOTES, note_form=form, status=422)
    note_add(review=access.review, study=study, author=request.user, text=form.cleaned_data["text"])
    return _study_render(request, access, study, fragment=NOTES)


def _notes_refused(request, access, study, message: str):
    context = _study_context(request, access, study) | {"notes_error": message}
    template = NOTES if request.htmx else "screening/studies/study.html"
    return render(request, template, context, status=422)


@require_POST
@login_required
def study_note_edit(request, slug, study_id, note_id):
    access = review_access(request, slug, Need.WRITE)
    study = _study(access.review, study_id)
    form = NoteForm(request.POST)
    if not form.is_valid():
        return _notes_refused(
            request, access, study, f"A note needs some text, at most {NOTE_MAX_LENGTH} characters."
        )
    seen_version, force = stale_guard(request)
    try:
        note_edit(
            review=access.review,
            study=study,
            note_id=note_id,
            user=request.user,
            text=form.cleaned_data["text"],
            seen_version=seen_version,
            force=force,
        )
    except StudyNote.DoesNotExist as error:
        raise Http404("This note no longer exists.") from error
    except StaleWrite as error:
        return stale_write_response(request, error, target="#study-notes")
    return _study_render(request, access, study, fragment=NOTES)


@require_POST
@login_required
def study_note_delete(request, slug, study_id, note_id):
    access = review_access(request, slug, Need.WRITE)
    study = _study(access.review, study_id)
    seen_version, _ = stale_guard(request)
    try:
        note_delete(
            review=access.review,
            study=study,
            note_id=note_id,
            user=request.user,
            seen_version=seen_version,
        )
    except StudyNote.DoesNotExist as error:
        raise Http404("This note no longer exists.") from error
    except StaleWrite as error:
        return stale_write_response(request, error, target="#study-notes")
    return _study_render(request, access, study, fragment=NOTES)


@require_POST
@login_required
def study_tag_add(request, slug, study_id):
    access = review_access(request, slug, Need.WRITE)
    study = _study(access.review, study_id)
    raw = request.POST.get("tag", "")
    if not raw.isdigit():
        return _study_render(request, access, study, fragment=TAGS, status=422)
    try:
        study_tags_apply(
            review=access.review, tag_id=int(raw), study_ids=[study.pk], user=request.user
        )
    except Tag.DoesNotExist as error:
        raise Http404("No such tag.") from error
    return _study_render(request, access, study, fragment=TAGS)


@require_POST
@login_required
def study_tag_remove_view(request, slug, study_id, tag_id):
    access = review_access(request, slug, Need.WRITE)
    study = _study(access.review, study_id)
    try:
        study_tag_remove(review=access.review, tag_id=tag_id, study=study, user=request.user)
    except Tag.DoesNotExist as error:
        raise Http404("No such tag.") from error
    return _study_render(request, access, study, fragment=TAGS)


urlpatterns = [
    path("", studies_list, name="studies_list"),
    path("bulk-tag/", studies_bulk_tag, name="studies_bulk_tag"),
    path("tags/", tags_manage, name="tags_manage"),
    path("tags/<int:tag_id>/delete/", tag_delete_view, name="tag_delete"),
    path("<int:study_id>/", study_page, name="study_page"),
    path("<int:study_id>/notes/", study_note_add, name="study_note_add"),
    path("<int:study_id>/notes/<int:note_id>/", study_note_edit, name="study_note_edit"),
    path("<int:study_id>/notes/<int:note_id>/delete/", study_note_delete, name="study_note_delete"),
    path("<int:study_id>/tags/", study_tag_add, name="study_tag_add"),
    path(
        "<int:study_id>/tags/<int:tag_id>/remove/",
        study_tag_remove_view,
        name="study_tag_remove",
    ),
]
