from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.password_validation import password_validators_help_texts
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from ..services.accounts import user_sessions_end_all


@require_GET
@login_required
def account(request):
    return render(
        request,
        "registration/account.html",
        {"password_rules": password_validators_help_texts()},
    )


@require_POST
@login_required
def logout_everywhere(request):
    user_sessions_end_all(user=request.user)
    logout(request)
    return redirect("login")
