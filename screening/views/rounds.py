"""Search rounds: the owner opens a search update, exports are imported into its runs, and
the round's page shows what the update brought against the earlier rounds."""

import datetime

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from ..access import Need, review_access
from ..forms import StyledFormMixin
from ..models import SearchRun
from ..selectors.imports import batch_list
from ..selectors.rounds import (
    DIFF_KINDS,
    round_diff,
    round_diff_rows,
    round_get,
    round_runs,
    rounds_list,
)
from ..services.imports import FORMAT_CHOICES, batch_create
from ..services.rounds import RoundRun, round_open
from ..services.stale import StaleWrite
from .imports import MultipleFileField
from .stale import stale_guard, stale_write_response

DIFF_PAGE_SIZE = 50


class _RoundPairsForm(forms.Form):
    """Adds a hits field per string and source before StyledFormMixin reads the errors."""

    def __init__(self, *args, pairs, **kwargs):
        super().__init__(*args, **kwargs)
        self.pairs = pairs
        for string, source in pairs:
            self.fields[self.field_name(string, source)] = forms.IntegerField(
                min_value=0,
                required=False,
                label=f"{source.name}: {string.text[:120]}",
            )

    @staticmethod
    def field_name(string, source) -> str:
        return f"hits_{string.pk}_{source.pk}"


class RoundOpenForm(StyledFormMixin, _RoundPairsForm):
    """The new round's date and, per search string and source, the hits the library reported
    (left empty: not re-run in this round)."""

    run_on = forms.DateField(
        label="Searches run on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The date the searches were re-run in the libraries.",
    )
    note = forms.CharField(max_length=300, required=False, label="Note (optional)")

    def rows(self):
        return [self[self.field_name(string, source)] for string, source in self.pairs]

    def runs(self) -> list[RoundRun]:
        return [
            RoundRun(search_string=string, source=source, hits_reported=hits)
            for string, source in self.pairs
            if (hits := self.cleaned_data.get(self.field_name(string, source))) is not None
        ]


class _RoundRunsForm(forms.Form):
    """Limits the runs to the round's before StyledFormMixin reads the errors."""

    search_run = forms.ModelChoiceField(
        queryset=SearchRun.objects.none(),
        label="Search run of this round",
        empty_label=None,
        error_messages={
            "invalid_choice": "Choose one of this round's search runs: the file must come "
            "from a source and search string the round re-ran."
        },
    )

    def __init__(self, *args, search_round, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["search_run"].queryset = search_round.runs.select_related(
            "search_string", "source"
        )
        self.fields["search_run"].label_from_instance = lambda run: (
            f"{run.source.name}: {run.search_string.text[:80]}"
        )


class RoundImportForm(StyledFormMixin, _RoundRunsForm):
    files = MultipleFileField(
        label="Export files",
        help_text="The files the libraries gave for this round's searches; the format is "
        "detected from the content.",
    )
    format = forms.ChoiceField(
        required=False,
        choices=FORMAT_CHOICES,
        label="Format",
    )


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
    created = []
    if form.is_valid():
        run = form.cleaned_data["search_run"]
        for upload in form.cleaned_data["files"]:
            try:
                created.append(
                    batch_create(
                        review=review,
                        source=run.source,
                        uploaded_by=request.user,
                        file_name=upload.name,
                        data=upload.read(),
                        search_run=run,
                        format=form.cleaned_data["format"] or None,
                    )
                )
            except ValidationError as error:
                form.add_error(None, f"{upload.name}: {' '.join(error.messages)}")
    if created and not form.errors:
        messages.success(
            request,
            f"{len(created)} file{'s' if len(created) != 1 else ''} queued for import into "
            f"round {search_round.number}.",
        )
        return redirect("screening:round_detail", slug=review.slug, number=search_round.number)
    return _detail_page(request, access, search_round, form, status=200 if created else 400)


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
