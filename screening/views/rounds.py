"""Search rounds: the owner opens a search update, exports are imported into its runs, and
the round's page shows what the update brought against the earlier rounds."""

import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from ..access import Need, review_access
from ..forms.rounds import RoundImportForm, RoundOpenForm
from ..selectors.imports import batch_list
from ..selectors.rounds import (
    DIFF_KINDS,
    round_diff,
    round_diff_rows,
    round_get,
    round_runs,
    rounds_list,
)
from ..services.rounds import RoundFile, round_files_add, round_open
from ..services.stale import StaleWrite
from .stale import stale_guard, stale_write_response

DIFF_PAGE_SIZE = 50


def _round_pairs(review):
    """Every search string in every source of the protocol: the searches a round may re-run."""
    sources = list(review.sources.all())
    return [(string, source) for string in review.search_strings.all() for source in sources]


@require_http_methods(["GET", "POST"])
@login_required
def round_list(request, slug):
    """The review's search rounds; the owner opens the next one here."""
    if request.method == "GET":
        access = review_access(request, slug)
        today = {"run_on": datetime.date.today()}
        pairs = _round_pairs(access.review)
        form = RoundOpenForm(pairs=pairs, initial=today) if access.is_owner else None
        return _list_page(request, access, form)
    access = review_access(request, slug, Need.OWN)
    review = access.review
    form = RoundOpenForm(request.POST, pairs=_round_pairs(review))
    if form.is_valid():
        seen_version, force = stale_guard(request)
        try:
            search_round = round_open(
                review=review,
                user=request.user,
                run_on=form.cleaned_data["run_on"],
                runs=form.runs(),
                seen_version=seen_version,
                force=force,
                note=form.cleaned_data["note"],
            )
        except StaleWrite as error:
            return stale_write_response(request, error)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Round {search_round.number} opened.")
            return redirect("screening:round_detail", slug=review.slug, number=search_round.number)
    return _list_page(request, access, form, status=400)


def _list_page(request, access, form, status=200):
    context = {
        "access": access,
        "review": access.review,
        "rounds": rounds_list(review=access.review),
        "rounds_version": access.review.search_rounds.count(),
        "form": form,
    }
    return render(request, "screening/rounds/list.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def round_detail(request, slug, number):
    """One round: its runs, its files and the diff of its records against earlier rounds;
    members who may import upload the round's exports here."""
    if request.method == "GET":
        access = review_access(request, slug)
        search_round = _round_or_404(access.review, number)
        form = RoundImportForm(search_round=search_round) if access.can_import else None
        return _detail_page(request, access, search_round, form)
    access = review_access(request, slug, Need.WRITE)
    if not access.can_import:
        raise PermissionDenied("You may not import files into this review.")
    review = access.review
    search_round = _round_or_404(review, number)
    form = RoundImportForm(request.POST, request.FILES, search_round=search_round)
    if form.is_valid():
        try:
            created = round_files_add(
                review=review,
                search_run=form.cleaned_data["search_run"],
                user=request.user,
                files=[RoundFile(name=f.name, data=f.read()) for f in form.cleaned_data["files"]],
                format=form.cleaned_data["format"] or None,
            )
        except ValidationError as error:
            for message in error.messages:
                form.add_error(None, message)
        else:
            messages.success(
                request,
                f"{len(created)} file{'s' if len(created) != 1 else ''} queued for import into "
                f"round {search_round.number}.",
            )
            return redirect("screening:round_detail", slug=review.slug, number=search_round.number)
    return _detail_page(request, access, search_round, form, status=400)


def _round_or_404(review, number):
    search_round = round_get(review=review, number=number)
    if search_round is None:
        raise Http404("No such search round.")
    return search_round


def _detail_page(request, access, search_round, form, status=200):
    review = access.review
    kind = request.GET.get("show", "new")
    if kind not in DIFF_KINDS:
        kind = "new"
    diff = round_diff(review=review, search_round=search_round)
    page = Paginator(diff.ids(kind), DIFF_PAGE_SIZE).get_page(request.GET.get("page"))
    batches = list(batch_list(review=review).filter(search_run__round=search_round))
    context = {
        "access": access,
        "review": review,
        "search_round": search_round,
        "runs": round_runs(search_round=search_round),
        "batches": batches,
        "unfinished": any(b.status in ("pending", "running") for b in batches) or diff.pending > 0,
        "diff": diff,
        "kind": kind,
        "page": page,
        "rows": round_diff_rows(
            review=review, diff=diff, record_ids=list(page.object_list), user=request.user
        ),
        "form": form,
    }
    template = (
        "screening/rounds/_diff.html"
        if request.htmx and request.method == "GET"
        else "screening/rounds/detail.html"
    )
    return render(request, template, context, status=status)


urlpatterns = [
    path("", round_list, name="round_list"),
    path("<int:number>/", round_detail, name="round_detail"),
]
