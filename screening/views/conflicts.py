"""The conflicts queue: the owner (or a designated adjudicator) settles disagreements."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from ..access import Need, review_access
from ..forms.conflicts import AdjudicatorForm, ResolveForm
from ..models import Study
from ..selectors.screening import (
    adjudicator_choices,
    can_adjudicate,
    conflicts_for_adjudicator,
    conflicts_pending,
    reasons_allowed,
    stage_get,
)
from ..services.screening import (
    adjudicator_designate,
    adjudicator_remove,
    conflict_resolve,
)
from ..services.stale import StaleWrite
from .common import form_errors
from .stale import stale_write_response


def _list_context(access, request, *, errors=None, study_error=None) -> dict:
    review = access.review
    adjudicates = can_adjudicate(review=review, user=request.user)
    context = {
        "access": access,
        "review": review,
        "adjudicates": adjudicates,
        "errors": errors or {},
        "study_error": study_error,
    }
    if adjudicates:
        rows = conflicts_for_adjudicator(review=review, user=request.user)
        reasons_by_stage: dict[int, list] = {}
        for row in rows:
            stage = row["study"].current_stage
            if stage.pk not in reasons_by_stage:
                reasons_by_stage[stage.pk] = reasons_allowed(stage=stage)
            row["reasons"] = reasons_by_stage[stage.pk]
        context["rows"] = rows
    else:
        # Others only learn how many conflicts wait, and in blind mode not even that: the count
        # would move with another reviewer's pending verdict.
        context["pending"] = None if review.blind_mode else conflicts_pending(review=review).count()
    if access.is_owner:
        context["adjudicators"] = adjudicator_choices(review=review)
    return context


def _render(request, context, status=200):
    template = "screening/conflicts/_list.html" if request.htmx else "screening/conflicts/list.html"
    return render(request, template, context, status=status)


@require_GET
@login_required
def conflict_list(request, slug):
    access = review_access(request, slug)
    return _render(request, _list_context(access, request))


@require_POST
@login_required
def conflict_resolve_view(request, slug, study_id):
    access = review_access(request, slug, Need.WRITE)
    review = access.review
    if not can_adjudicate(review=review, user=request.user):
        raise PermissionDenied("Only the owner or a designated adjudicator resolves conflicts.")
    study = get_object_or_404(
        Study.objects.select_related("current_stage"), pk=study_id, review=review
    )
    stage = stage_get(review=review, key=request.POST.get("stage", "")) or study.current_stage
    form = ResolveForm(request.POST, reasons=reasons_allowed(stage=stage) if stage else [])
    error = None
    if stage is None:
        error = "This study is not waiting in a stage."
    elif form.is_valid():
        try:
            conflict_resolve(
                review=review,
                study=study,
                stage=stage,
                adjudicator=request.user,
                verdict=form.cleaned_data["verdict"],
                reasons=form.cleaned_data["reasons"],
                primary_reason=form.cleaned_data["primary_reason"],
                note=form.cleaned_data["note"],
                seen_version=form.cleaned_data["version"],
                force=form.cleaned_data["force"],
            )
        except StaleWrite as stale:
            return stale_write_response(request, stale, target=f"#conflict-stale-{study.pk}")
        except PermissionDenied as exc:
            context = _list_context(access, request, study_error=(study.pk, str(exc)))
            return _render(request, context, status=403)
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            if not request.htmx:
                messages.success(request, f"Study {study.pk} resolved.")
                return redirect("screening:conflict_list", slug=review.slug)
            context = _list_context(access, request)
            context["resolved_message"] = f"Study {study.pk} resolved."
            return _render(request, context)
    else:
        error = form_errors(form)
    context = _list_context(access, request, study_error=(study.pk, error))
    return _render(request, context, status=422)


@require_POST
@login_required
def conflict_adjudicators(request, slug):
    access = review_access(request, slug, Need.OWN)
    review = access.review
    form = AdjudicatorForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a reviewer.")
        return redirect("screening:conflict_list", slug=review.slug)
    user = get_object_or_404(
        get_user_model(), pk=form.cleaned_data["user"], memberships__review=review
    )
    try:
        if form.cleaned_data["action"] == "add":
            adjudicator_designate(review=review, user=user, by=request.user)
            messages.success(request, f"{user.get_username()} now resolves conflicts.")
        else:
            adjudicator_remove(review=review, user=user, by=request.user)
            messages.success(request, f"{user.get_username()} no longer resolves conflicts.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("screening:conflict_list", slug=review.slug)


urlpatterns = [
    path("", conflict_list, name="conflict_list"),
    path("adjudicators/", conflict_adjudicators, name="conflict_adjudicators"),
    path("<int:study_id>/resolve/", conflict_resolve_view, name="conflict_resolve"),
]
