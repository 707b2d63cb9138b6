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


class FunnelSchedule(models.Model):
    """Debounce state of a review's funnel recomputation: at most one task pending.

    `requested_at` is the last time something asked for a fresh funnel (an import, a merge, a
    resolution, the recompute button); the reports page shows "computing" while it is newer
    than the latest snapshot. `pending_since` is set while a task is queued and cleared when
    the task starts, so requests arriving meanwhile ride on the queued task.
    """

    review = models.OneToOneField(
        "screening.Review", on_delete=models.CASCADE, related_name="funnel_schedule"
    )
    requested_at = models.DateTimeField()
    pending_since = models.DateTimeField(null=True, blank=True)
    # How long the last computation took: a change waits at least FUNNEL_BUSY_FACTOR times as
    # long before the next one (services/funnel.py), so a review whose funnel takes seconds to
    # count is not recounted back to back while its team screens.
    compute_seconds = models.FloatField(default=0)

    def __str__(self) -> str:
        return f"funnel schedule of {self.review_id}"
