"""The one 409 answer for a stale write (see `screening.services.stale`)."""

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django_htmx.http import reswap, retarget
from django_htmx.middleware import HtmxDetails

from ..services.stale import StaleWrite

# Form fields the stale message must not echo back: the CSRF token is in hx-headers, and the
# version and force flag are set afresh.
_NOT_ECHOED = {"csrfmiddlewaretoken", "version", "force"}


class HtmxHttpRequest(HttpRequest):
    """A request as django-htmx's middleware (on for every request) leaves it."""

    htmx: HtmxDetails


def stale_write_response(
    request: HtmxHttpRequest, error: StaleWrite, *, target: str | None = None
) -> HttpResponse:
    """Answer 409 with the stored value and a form that re-posts the user's change, forced.

    `target` (a CSS selector) is where the message goes on htmx requests; by default it replaces
    the request's own target. Without htmx the message is a full page.
    """
    echoed = [
        (name, value)
        for name in request.POST
        if name not in _NOT_ECHOED
        for value in request.POST.getlist(name)
    ]
    reload_url = (request.htmx.current_url if request.htmx else None) or request.META.get(
        "HTTP_REFERER", ""
    )
    context = {
        "stale": error,
        "echoed": echoed,
        "action": request.get_full_path(),
        "reload_url": reload_url,
    }
    template = (
        "screening/partials/_stale_write.html" if request.htmx else "screening/stale_write.html"
    )
    response = HttpResponse(render_to_string(template, context, request=request), status=409)
    if request.htmx and target:
        response = retarget(reswap(response, "innerHTML"), target)
    return response


def stale_guard(request: HttpRequest) -> tuple[int | None, bool]:
    """The version a posted form was rendered with and whether to apply it anyway.

    Both come unprefixed (`version`, `force`), as `_stale_write.html` re-posts them. A missing or
    malformed version is None, which never overwrites an existing row (see `version_check`).
    """
    raw = request.POST.get("version", "")
    seen_version = int(raw) if raw.isdigit() else None
    return seen_version, request.POST.get("force") == "1"
