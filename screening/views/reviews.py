from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from ..access import review_access
from ..forms import ReviewCreateForm
from ..models import Membership
from ..selectors.invitations import invitation_token, invitations_for_user
from ..selectors.protocol import reviews_for_user
from ..selectors.screening import stage_with_work
from ..services.reviews import review_create as review_create_service


def may_create_reviews(user) -> bool:
    """SLRWEB_REVIEW_CREATION: "anyone" signed in (the default) or "staff" only."""
    return user.is_staff or settings.SLRWEB_REVIEW_CREATION != "staff"


@require_GET
@login_required
def review_list(request):
    context = {
        "memberships": reviews_for_user(user=request.user),
        "invitations": [
            {"invitation": invitation, "token": invitation_token(invitation)}
            for invitation in invitations_for_user(user=request.user)
        ],
        "may_create": may_create_reviews(request.user),
    }
    return render(request, "screening/reviews/list.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def review_create(request):
    if not may_create_reviews(request.user):
        raise PermissionDenied(
            "On this site only administrators create reviews. Ask an administrator to create "
            "the review and invite you as its owner."
        )
    form = ReviewCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        review = review_create_service(
            slug=form.cleaned_data["slug"],
            title=form.cleaned_data["title"],
            owner=request.user,
            objectives=form.cleaned_data["objectives"],
        )
        return redirect("screening:protocol_detail", slug=review.slug)
    return render(request, "screening/reviews/create.html", {"form": form})


@require_GET
@login_required
def review_home(request, slug):
    """Where opening a review lands: owners and viewers on the dashboard, reviewers on the
    first stage with studies left for them (the stage list when none is left)."""
    access = review_access(request, slug)
    review = access.review
    if access.role != Membership.Role.REVIEWER:
        return redirect("screening:dashboard", slug=review.slug)
    stage = stage_with_work(review=review, reviewer=request.user)
    if stage is None:
        return redirect("screening:screening_home", slug=review.slug)
    return redirect("screening:screening_stage", slug=review.slug, stage_key=stage.key)
