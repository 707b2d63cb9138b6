from django.conf import settings
from django.db import models


class PrismaSAnswers(models.Model):
    """The owner's answers to the PRISMA-S items slrweb cannot derive (one row per review).

    `answers` maps an item number ("1".."16") to the team's text; derived items keep their
    derived text and show the answer after it.
    """

    review = models.OneToOneField(
        "screening.Review", on_delete=models.CASCADE, related_name="prisma_s_answers"
    )
    answers = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=1)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "PRISMA-S answers"

    def __str__(self) -> str:
        return f"PRISMA-S answers of {self.review_id}"
