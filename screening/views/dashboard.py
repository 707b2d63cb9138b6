"""The review dashboard: progress per stage and reviewer, and inter-rater agreement."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from ..access import Need, review_access
from ..selectors.dashboard import dashboard_data
from ..services.screening import review_blind_mode_set


class BlindModeForm(forms.Form):
    blind_mode = forms.TypedChoiceField(
        choices=[("on", "on"), ("off", "off")], coerce=lambda value: value == "on"
    )


@require_GET
@login_required
def dashboard(request, slug):
    access = review_access(request, slug)
    context = {
        "access": access,
        "review": access.review,
        **dashboard_data(review=access.review, user=request.user),
    }
    template = (
        "screening/dashboard/_content.html"
        if request.htmx
        else "screening/dashboard/dashboard.html"
    )
    return render(request, template, context)


@require_POST
@login_required
def dashboard_blind_mode(request, slug):
    access = review_access(request, slug, Need.OWN)
    form = BlindModeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Blind mode is either on or off.")
        return redirect("screening:dashboard", slug=access.review.slug)
    blind = form.cleaned_data["blind_mode"]
    review_blind_mode_set(review=access.review, blind=blind, by=request.user)
    messages.success(request, f"Blind mode is {'on' if blind else 'off'}.")
    return redirect("screening:dashboard", slug=access.review.slug)


urlpatterns = [
    path("", dashboard, name="dashboard"),
    path("blind-mode/", dashboard_blind_mode, name="dashboard_blind_mode"),
]
