from django.conf import settings
from django.db import models
from django.db.models import Q


class SearchRound(models.Model):
    """A search update: the review's searches re-run on a later date (number 2, 3, ...).

    Round 1 is the review's original searches, whose runs carry no round.
    """

    review = models.ForeignKey(
        "screening.Review",
        on_delete=models.CASCADE,
        related_name="search_rounds",
        db_index=False,
    )
    number = models.PositiveSmallIntegerField()
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    opened_at = models.DateTimeField(auto_now_add=True)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["review", "number"]
        constraints = [
            models.UniqueConstraint(fields=["review", "number"], name="search_round_unique"),
            models.CheckConstraint(condition=Q(number__gte=2), name="search_round_after_first"),
        ]

    def __str__(self) -> str:
        return f"Round {self.number} of {self.review}"
