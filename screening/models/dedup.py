from django.conf import settings
from django.db import models
from django.db.models import Q


class StudyMerge(models.Model):
    """A merge of one study into another, with what is needed to undo it exactly.

    `snapshot` holds the absorbed study and every row that depended on it (decisions and their
    reasons, resolutions, full text, quality answers...) serialised before it was deleted, the
    ids of its records, and the kept study's display fields before the merge. Unmerging
    recreates the absorbed study with the same primary key and moves its records back.
    """

    class Method(models.TextChoices):
        MANUAL = "manual", "Decided by a reviewer"

    review = models.ForeignKey("screening.Review", on_delete=models.CASCADE, related_name="+")
    kept = models.ForeignKey(
        "screening.Study", on_delete=models.CASCADE, related_name="merges_received"
    )
    absorbed_study_id = models.PositiveBigIntegerField()
    absorbed_title = models.TextField(blank=True)
    candidate = models.ForeignKey(
        "screening.DuplicateCandidate",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="merges",
    )
    method = models.CharField(max_length=20, choices=Method.choices, default=Method.MANUAL)
    record_ids = models.JSONField(default=list)
    snapshot = models.JSONField(default=dict)
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    merged_at = models.DateTimeField(auto_now_add=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-merged_at", "-id"]
        constraints = [
            # An absorbed study can be absorbed only once at a time.
            models.UniqueConstraint(
                fields=["review", "absorbed_study_id"],
                condition=Q(undone_at__isnull=True),
                name="study_merge_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"study {self.absorbed_study_id} into {self.kept_id}"
