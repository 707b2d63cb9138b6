"""The user's API tokens: make one (shown once), see when each was used, revoke."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from ..forms.tokens import TokenForm
from ..models import ApiToken
from ..selectors.tokens import api_tokens_of
from ..services.tokens import TokenNameTaken, api_token_create, api_token_revoke


def _render(request, *, form, raw=None, status=200):
    context = {"form": form, "tokens": api_tokens_of(user=request.user), "raw": raw}
    template = "screening/tokens/_tokens.html" if request.htmx else "screening/tokens/page.html"
    return render(request, template, context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def token_list(request):
    if request.method == "GET":
        return _render(request, form=TokenForm())
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _render(request, form=form, status=422)
    try:
        _, raw = api_token_create(user=request.user, name=form.cleaned_data["name"])
    except TokenNameTaken as error:
        form.add_error("name", str(error))
        return _render(request, form=form, status=422)
    # The raw token is in this answer only: it is not stored and cannot be shown again.
    return _render(request, form=TokenForm(), raw=raw)


@require_POST
@login_required
def token_revoke(request, token_id):
    try:
        token = api_token_revoke(user=request.user, token_id=token_id)
    except ApiToken.DoesNotExist as error:
        raise Http404("No such token.") from error
    if not request.htmx:
        messages.success(request, f"Token {token.name!r} is revoked: it no longer opens the API.")
        return redirect("api_tokens")
    return _render(request, form=TokenForm())
