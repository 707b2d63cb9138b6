from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from ..access import review_access
from ..forms import ReviewCreateForm
from ..selectors.protocol import reviews_for_user
from ..services.reviews import review_create as review_create_service


@require_GET
@login_required
def review_list(request):
    memberships = reviews_for_user(user=request.user)
    return render(request, "screening/reviews/list.html", {"memberships": memberships})


@require_http_methods(["GET", "POST"])
@login_required
def review_create(request):
    if not request.user.is_staff:
        raise PermissionDenied("Only site administrators can create reviews.")
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
    access = review_access(request, slug)
    return redirect("screening:protocol_detail", slug=access.review.slug)
