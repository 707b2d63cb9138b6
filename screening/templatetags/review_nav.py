"""The review sidebar's state: which section the page belongs to, and whether to show the
owners' items."""

from django import template

from ..models import Membership

register = template.Library()

# The first path segment after /r/<slug>/ -> the sidebar item it belongs to.
SECTION_ALIASES = {"prisma-s": "reports", "": "dashboard"}


@register.simple_tag(takes_context=True)
def review_nav_state(context, review) -> dict:
    request = context.get("request")
    section = ""
    match = getattr(request, "resolver_match", None)
    if match is not None and match.route.startswith("r/"):
        parts = match.route.split("/")
        section = parts[2] if len(parts) > 2 else ""
    access = context.get("access")
    if access is not None and getattr(access, "review", None) == review:
        is_owner = access.is_owner
    else:
        user = getattr(request, "user", None)
        is_owner = bool(
            user is not None
            and user.is_authenticated
            and Membership.objects.filter(
                review=review, user=user, role=Membership.Role.OWNER
            ).exists()
        )
    return {"section": SECTION_ALIASES.get(section, section), "is_owner": is_owner}
