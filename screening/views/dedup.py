"""Deduplication pages: the grey-zone queue (side by side, keyboard first), merged studies
with unmerge, and per-source counts with the source-overlap matrix."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from ..access import Need, review_access
from ..forms.dedup import DecideForm, MergedFilterForm, SkipForm
from ..models import DuplicateCandidate, Record, StudyMerge
from ..selectors import dedup as selectors
from ..services.dedup import (
    candidate_decide,
    candidate_undo,
    dedup_enqueue,
    record_split,
    study_unmerge,
)
from ..services.queue import BROKER_DOWN_MESSAGE


def _pair_context(access, *, skip=(), candidate=None, error=""):
    review = access.review
    if candidate is None:
        candidate = selectors.candidate_next(review=review, skip=skip)
    return {
        "review": review,
        "access": access,
        "candidate": candidate,
        "rows": selectors.candidate_rows(candidate) if candidate else [],
        "pending": selectors.pending_count(review=review),
        "skip": ",".join(str(x) for x in skip),
        "next_skip": ",".join(str(x) for x in (*skip, candidate.pk)) if candidate else "",
        "error": error,
    }


def _render_pair(request, access, status=200, **kwargs):
    context = _pair_context(access, **kwargs)
    if request.htmx:
        return render(request, "screening/dedup/_pair.html", context, status=status)
    context["overview"] = selectors.source_overview(review=access.review)
    context.update(_status_context(access))
    return render(request, "screening/dedup/queue.html", context, status=status)


@require_GET
@login_required
def dedup_queue(request, slug):
    access = review_access(request, slug, Need.READ)
    form = SkipForm(request.GET)
    if not form.is_valid():
        return _render_pair(
            request, access, status=400, error="The list of skipped pairs is malformed."
        )
    return _render_pair(request, access, skip=form.skipped())


@require_POST
@login_required
def dedup_decide(request, slug):
    access = review_access(request, slug, Need.WRITE)
    form = DecideForm(request.POST)
    if not form.is_valid():
        return _render_pair(
            request, access, status=400, error="Choose Duplicate or Not duplicate for a pair."
        )
    skip = form.skipped()
    candidate = get_object_or_404(
        DuplicateCandidate, pk=form.cleaned_data["candidate"], review=access.review
    )
    try:
        candidate_decide(
            review=access.review,
            candidate=candidate,
            user=request.user,
            is_duplicate=form.cleaned_data["verdict"] == "duplicate",
        )
    except ValidationError as error:
        return _render_pair(request, access, status=409, skip=skip, error=" ".join(error.messages))
    if not request.htmx:
        return redirect("screening:dedup_queue", slug=access.review.slug)
    return _render_pair(request, access, skip=skip)


@require_POST
@login_required
def dedup_undo(request, slug):
    access = review_access(request, slug, Need.WRITE)
    candidate = candidate_undo(review=access.review, user=request.user)
    if candidate is None:
        return _render_pair(request, access, error="You have no decision to undo.")
    if not request.htmx:
        return redirect("screening:dedup_queue", slug=access.review.slug)
    shown = selectors.candidate_for(review=access.review, pk=candidate.pk)
    return _render_pair(request, access, candidate=shown)


@require_GET
@login_required
def dedup_merged(request, slug):
    access = review_access(request, slug, Need.READ)
    form = MergedFilterForm(request.GET)
    if not form.is_valid():
        return _render_merged(
            request,
            access,
            MergedFilterForm(),
            status=400,
            error="The search or page number is not valid.",
        )
    return _render_merged(request, access, form)


@require_POST
@login_required
def dedup_unmerge(request, slug, merge_id):
    access = review_access(request, slug, Need.WRITE)
    merge = get_object_or_404(StudyMerge, pk=merge_id, review=access.review)
    try:
        study = study_unmerge(review=access.review, merge=merge, user=request.user)
    except ValidationError as error:
        return _after_merged_change(request, access, error=" ".join(error.messages))
    return _after_merged_change(
        request, access, notice=f"Study {study.pk} restored with its screening state."
    )


@require_POST
@login_required
def dedup_split(request, slug, record_id):
    access = review_access(request, slug, Need.WRITE)
    record = get_object_or_404(Record, pk=record_id, review=access.review, study__isnull=False)
    try:
        study = record_split(review=access.review, record=record, user=request.user)
    except ValidationError as error:
        return _after_merged_change(request, access, error=" ".join(error.messages))
    return _after_merged_change(
        request, access, notice=f"Record {record.pk} is now study {study.pk}, at the entry stage."
    )


def _render_merged(request, access, form, *, status=200, notice="", error=""):
    cleaned = form.cleaned_data if form.is_bound else {}
    query = cleaned.get("q") or ""
    page = cleaned.get("page") or 1
    context = {
        "review": access.review,
        "access": access,
        "query": query,
        "page": selectors.merged_studies_page(review=access.review, query=query, page=page),
        "notice": notice,
        "error": error,
    }
    if request.htmx:
        return render(request, "screening/dedup/_merged.html", context, status=status)
    context["overview"] = selectors.source_overview(review=access.review)
    return render(request, "screening/dedup/merged.html", context, status=status)


def _after_merged_change(request, access, *, notice="", error=""):
    """htmx: the list page the reviewer was on, with the outcome; otherwise back to it."""
    form = MergedFilterForm(request.POST)
    if not form.is_valid():
        # The change is made; a malformed page or search only costs the reviewer their place.
        form = MergedFilterForm({})
        form.is_valid()
    if request.htmx:
        return _render_merged(
            request, access, form, status=409 if error else 200, notice=notice, error=error
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(request, notice)
    target = reverse("screening:dedup_merged", kwargs={"slug": access.review.slug})
    params = {k: v for k, v in form.cleaned_data.items() if v}
    return redirect(f"{target}?{urlencode(params)}" if params else target)


def _status_context(access) -> dict:
    review = access.review
    return {
        "review": review,
        "access": access,
        "unassigned": selectors.unassigned_count(review=review),
        "pending": selectors.pending_count(review=review),
    }


@require_GET
@login_required
def dedup_status(request, slug):
    """The polling fragment: asks again every 2 s while records wait for deduplication."""
    access = review_access(request, slug, Need.READ)
    context = _status_context(access)
    context["queued"] = False  # polled: offer to reload the queue once the run is over
    return render(request, "screening/dedup/_status.html", context)


@require_POST
@login_required
def dedup_run(request, slug):
    access = review_access(request, slug, Need.WRITE)
    queued = dedup_enqueue(review_id=access.review.pk)
    if not request.htmx:
        messages.info(request, "Deduplication queued." if queued else BROKER_DOWN_MESSAGE)
        return redirect("screening:dedup_queue", slug=access.review.slug)
    context = _status_context(access)
    context["queued"] = True
    context["broker_down_message"] = "" if queued else BROKER_DOWN_MESSAGE
    return render(request, "screening/dedup/_status.html", context)


urlpatterns = [
    path("", dedup_queue, name="dedup_queue"),
    path("decide/", dedup_decide, name="dedup_decide"),
    path("undo/", dedup_undo, name="dedup_undo"),
    path("status/", dedup_status, name="dedup_status"),
    path("run/", dedup_run, name="dedup_run"),
    path("merged/", dedup_merged, name="dedup_merged"),
    path("merged/<int:merge_id>/unmerge/", dedup_unmerge, name="dedup_unmerge"),
    path("records/<int:record_id>/split/", dedup_split, name="dedup_split"),
]
