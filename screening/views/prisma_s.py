"""The PRISMA-S search report: derived from the logged searches, completed by the owner."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods

from ..access import Need, review_access
from ..forms.prisma_s import AnswersForm
from ..selectors.prisma_s import (
    prisma_s_answers,
    prisma_s_asks,
    prisma_s_document,
    prisma_s_report,
)
from ..services.prisma_s import prisma_s_answers_set
from ..services.stale import StaleWrite
from .stale import stale_write_response

DOWNLOADS = {
    "md": ("text/markdown; charset=utf-8", "prisma-s.md"),
    "json": ("application/json", "prisma-s.json"),
}


def _context(access, form=None) -> dict:
    review = access.review
    stored = prisma_s_answers(review=review)
    if form is None and access.is_owner:
        initial = {f"item_{n}": text for n, text in (stored.answers if stored else {}).items()}
        form = AnswersForm(initial={**initial, "version": stored.version if stored else 0})
    items = prisma_s_report(review=review)
    asks = prisma_s_asks()
    return {
        "access": access,
        "review": review,
        "items": [{"item": item, "asks": asks[item.number]} for item in items],
        "missing": sum(item.source == "missing" for item in items),
        "stored": stored,
        "form": form,
    }


def _render(request, context, status=200):
    template = "screening/prisma_s/_report.html" if request.htmx else "screening/prisma_s/page.html"
    return render(request, template, context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def prisma_s_page(request, slug):
    if request.method == "GET":
        return _render(request, _context(review_access(request, slug, Need.READ)))
    access = review_access(request, slug, Need.OWN)
    form = AnswersForm(request.POST)
    if not form.is_valid():
        return _render(request, _context(access, form), status=422)
    try:
        prisma_s_answers_set(
            review=access.review,
            by=request.user,
            answers=form.answers(),
            seen_version=form.cleaned_data["version"],
            force=form.cleaned_data["force"],
        )
    except StaleWrite as error:
        return stale_write_response(request, error, target="#prisma-s-form-errors")
    if not request.htmx:
        return redirect("screening:prisma_s", slug=slug)
    return _render(request, _context(access))


@require_GET
@login_required
def prisma_s_download(request, slug, fmt):
    access = review_access(request, slug, Need.READ)
    if fmt not in DOWNLOADS:
        raise Http404("No such download.")
    content_type, name = DOWNLOADS[fmt]
    body = prisma_s_document(review=access.review, fmt=fmt)
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{access.review.slug}-{name}"'
    return response


urlpatterns = [
    path("", prisma_s_page, name="prisma_s"),
    path("download.<str:fmt>", prisma_s_download, name="prisma_s_download"),
]
