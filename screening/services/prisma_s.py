"""Writes of the PRISMA-S answers the review team enters (what slrweb cannot derive)."""

from django.contrib.auth.models import User
from django.db import transaction

from ..domain.prisma_s import NUMBERS
from ..models import PrismaSAnswers, Review
from .audit import audit_event_record
from .stale import version_check

ANSWER_MAX_LENGTH = 5000


def prisma_s_answers_set(
    *,
    review: Review,
    by: User,
    answers: dict[int, str],
    seen_version: int | None,
    force: bool = False,
) -> PrismaSAnswers:
    """Store the team's answers (item number -> text; blank clears), refusing a stale form.

    The form sends every item, so the stored answers are replaced as a whole.
    """
    unknown = set(answers) - set(NUMBERS)
    if unknown:
        raise ValueError(f"PRISMA-S has no item {', '.join(map(str, sorted(unknown)))}.")
    cleaned = {str(n): text.strip() for n, text in sorted(answers.items()) if text.strip()}
    too_long = [n for n, text in cleaned.items() if len(text) > ANSWER_MAX_LENGTH]
    if too_long:
        raise ValueError(
            f"Item {', '.join(too_long)}: at most {ANSWER_MAX_LENGTH} characters per answer."
        )
    with transaction.atomic():
        stored = PrismaSAnswers.objects.select_for_update().filter(review=review).first()
        stored_version = stored.version if stored else 0
        version_check(
            stored_version=stored_version,
            seen_version=seen_version,
            force=force,
            what="The PRISMA-S answers",
            current=_summary(stored.answers if stored else {}),
            by=stored.updated_by.username if stored and stored.updated_by else "",
            at=stored.updated_at if stored else None,
        )
        before = {"answers": stored.answers, "version": stored_version} if stored else None
        if stored is None:
            stored = PrismaSAnswers(review=review, version=0)
        forced = force and (seen_version or 0) != stored_version
        stored.answers = cleaned
        stored.version += 1
        stored.updated_by = by
        stored.save()
        audit_event_record(
            review=review,
            actor=by,
            action="prisma_s.overwrite" if forced else "prisma_s.update",
            obj=stored,
            before=before,
            after={"answers": cleaned, "version": stored.version},
        )
    return stored


def _summary(answers: dict[str, str]) -> str:
    if not answers:
        return "no answers"
    return "answers to item " + ", ".join(sorted(answers, key=int))
