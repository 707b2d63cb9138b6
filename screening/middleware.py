"""Flash messages belong to the response that caused them."""

from django.contrib import messages
from django.contrib.messages.storage.base import BaseStorage
from django.template.loader import render_to_string

# htmx headers that make the browser load another page: that page shows the messages.
_NAVIGATING = ("HX-Redirect", "HX-Refresh", "HX-Location")
# Answers htmx swaps (base.html's htmx-config): only their out-of-band parts reach the page.
_SWAPPED = {200, 400, 409, 422}


class HtmxMessagesMiddleware:
    """Deliver the messages queued while answering an htmx request in that same answer.

    A fragment does not render the page's message area, so without this a message set during
    an htmx request stayed in storage and appeared on whatever full page came next, minutes
    later. Here it is appended out of band (`#messages` in base.html); an answer without content
    (204) becomes a 200 that swaps nothing else. Answers that navigate keep them for the page
    they lead to, and a full page fetched by htmx has rendered them itself.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not getattr(request, "htmx", False) or response.streaming:
            return response
        if any(header in response for header in _NAVIGATING):
            return response
        if not response.get("Content-Type", "").startswith("text/html"):
            return response
        if response.status_code not in _SWAPPED | {204}:
            return response
        storage = messages.get_messages(request)
        if not isinstance(storage, BaseStorage) or storage.used:
            return response
        queued = list(storage)  # iterating marks them shown: they are not stored again
        if not queued:
            return response
        if response.status_code == 204:
            response.status_code = 200
            response["HX-Reswap"] = "none"
        response.content += render_to_string(
            "screening/partials/_messages.html",
            {"messages": queued, "oob": True},
            request=request,
        ).encode()
        return response
