from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ..access import review_access
from ..selectors.protocol import search_run_matrix


@require_GET
@login_required
def protocol_detail(request, slug):
    access = review_access(request, slug)
    review = access.review
    context = {
        "access": access,
        "review": review,
        "research_questions": review.research_questions.all(),
        "criteria": review.criteria.all(),
        "quality_criteria": review.quality_criteria.all(),
        "stages": review.stages.all(),
        "table1": search_run_matrix(review=review),
        "members": review.memberships.select_related("user"),
    }
    return render(request, "screening/protocol/detail.html", context)
