"""Error answers Django asks the project for by setting (see slrweb/settings.py)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.csrf import csrf_failure as django_csrf_failure


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form refused for its size is answered for its size, not as an expired form.

    An upload over the request cap is refused before its body is read (screening/uploads.py),
    so its CSRF token is never read either; without this, a plain (non-htmx) form post got
    "This form has expired".
    """
    refusals = getattr(request, "upload_refusals", None)
    if refusals:
        return render(request, "413.html", {"refusals": refusals}, status=413)
    return django_csrf_failure(request, reason=reason)
