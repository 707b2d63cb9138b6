"""Invitations: owners invite by e-mail or username; the invitee follows the signed link,
creates an account (or logs in) and lands in the review with the invited role."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods, require_POST

from ..access import Need, review_access
from ..forms.invitations import InvitationForm, InvitationSignUpForm
from ..models import Invitation
from ..selectors.invitations import (
    InvitationState,
    invitation_from_token,
    invitation_state,
    invitations_open,
)
from ..services.invitations import (
    STATE_MESSAGES,
    invitation_accept,
    invitation_create,
    invitation_link,
    invitation_names_nobody,
    invitation_revoke,
    invitation_sign_up,
)

LOGIN_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _error_text(error: ValidationError) -> str:
    return " ".join(error.messages)


def _list(request, access, form, status=200):
    site_url = request.build_absolute_uri("/")
    rows = [
        {
            "invitation": invitation,
            # By username the owner gets no link: following it would tell whether the
            # account exists. The invitee finds it on their review list (or in the mail).
            "link": ""
            if invitation.username
            else invitation_link(invitation=invitation, site_url=site_url),
            "expired": invitation_state(invitation) == InvitationState.EXPIRED,
        }
        for invitation in invitations_open(review=access.review)
    ]
    context = {"access": access, "review": access.review, "form": form, "rows": rows}
    return render(request, "screening/invitations/list.html", context, status=status)


def _created_message(invitation: Invitation) -> str:
    role = invitation.get_role_display().lower()
    if invitation.username:
        # Worded alike whether or not the account exists: owners must not probe usernames.
        return (
            f"Invitation recorded for {invitation.username} ({role}): if an account with "
            "that username exists, it will see the invitation on its review list."
        )
    return f"Invitation sent to {invitation.email} ({role})."


@require_http_methods(["GET", "POST"])
@login_required
def invitation_list(request, slug):
    access = review_access(request, slug, Need.OWN)
    form = InvitationForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                invitation = invitation_create(
                    review=access.review,
                    by=request.user,
                    invitee=form.cleaned_data["invitee"],
                    role=form.cleaned_data["role"],
                    site_url=request.build_absolute_uri("/"),
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, _created_message(invitation))
                return redirect("screening:invitation_list", slug=access.review.slug)
        return _list(request, access, form, status=422)
    return _list(request, access, form)


@require_POST
@login_required
def invitation_revoke_view(request, slug, pk):
    access = review_access(request, slug, Need.OWN)
    invitation = get_object_or_404(Invitation, review=access.review, pk=pk)
    try:
        invitation_revoke(review=access.review, invitation=invitation, by=request.user)
    except ValidationError as error:
        messages.error(request, _error_text(error))
    else:
        messages.success(request, "Invitation withdrawn: its link no longer works.")
    return redirect("screening:invitation_list", slug=access.review.slug)


def _closed(request, state: str, invitation=None):
    status = 404 if state == InvitationState.INVALID else 410
    context = {"state": state, "message": STATE_MESSAGES[state], "invitation": invitation}
    return render(request, "screening/invitations/closed.html", context, status=status)


@require_http_methods(["GET", "POST"])
def invitation_open(request, token):
    """The invitation link: sign up, log in, or accept, depending on who follows it."""
    lookup = invitation_from_token(token)
    invitation = lookup.invitation
    if invitation is None or lookup.state != InvitationState.OPEN:
        return _closed(request, lookup.state, invitation)
    if invitation_names_nobody(invitation):
        return _closed(request, InvitationState.INVALID)
    user = request.user
    form = None
    error = ""
    if not user.is_authenticated and invitation.user_id is None:
        form = InvitationSignUpForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                new_user, _ = invitation_sign_up(
                    invitation=invitation,
                    username=form.cleaned_data["username"],
                    password=form.cleaned_data["password1"],
                )
            except ValidationError as failure:
                error = _error_text(failure)
            else:
                login(request, new_user, backend=LOGIN_BACKEND)
                messages.success(request, f"Welcome to {invitation.review.title}.")
                return redirect("screening:review_home", slug=invitation.review.slug)
    elif user.is_authenticated and request.method == "POST":
        try:
            invitation_accept(invitation=invitation, user=user)
        except ValidationError as failure:
            error = _error_text(failure)
        else:
            messages.success(request, f"You joined {invitation.review.title}.")
            return redirect("screening:review_home", slug=invitation.review.slug)
    context = {"invitation": invitation, "form": form, "error": error, "token": token}
    status = 422 if request.method == "POST" else 200
    return render(request, "screening/invitations/open.html", context, status=status)


urlpatterns = [
    path("", invitation_list, name="invitation_list"),
    path("<int:pk>/revoke/", invitation_revoke_view, name="invitation_revoke"),
]
