from django.db import models


class FunnelSnapshot(models.Model):
    """The selection funnel as computed by a worker from stored decisions at one moment."""

    review = models.ForeignKey(
        "screening.Review", on_delete=models.CASCADE, related_name="funnel_snapshots"
    )
    computed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    data = models.JSONField()

    class Meta:
        ordering = ["-computed_at", "-id"]
        get_latest_by = "computed_at"

    def __str__(self) -> str:
        return f"funnel of {self.review_id} at {self.computed_at:%Y-%m-%d %H:%M}"
