from django.conf import settings
from django.db import models
from django.db.models import Q


class RankingSettings(models.Model):
    """The owner's prioritisation settings of one stage (queue order itself is Stage.queue_order).

    `retrain_every` is K: a training is scheduled after every K new decisions in the stage.
    `stop_after_irrelevant` is the stopping hint: the progress panel flags when that many
    consecutive irrelevant decisions have been made since the last include (0 = no hint).
    """

    stage = models.OneToOneField(
        "screening.Stage", on_delete=models.CASCADE, related_name="ranking_settings"
    )
    retrain_every = models.PositiveSmallIntegerField(
        default=10, help_text="Retrain the model after this many new decisions (1-500)."
    )
    stop_after_irrelevant = models.PositiveIntegerField(
        default=100,
        help_text="Suggest stopping after this many consecutive irrelevant decisions (0 = off).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(retrain_every__gte=1) & Q(retrain_every__lte=500),
                name="ranking_settings_k_range",
            ),
        ]

    def __str__(self) -> str:
        return f"ranking settings of {self.stage}"


class RankingRun(models.Model):
    """One training of the prioritisation model for one stage, and what it wrote.

    At most one run per review is queued or running at a time (a partial unique constraint):
    scheduling claims the slot by inserting a pending run; a second scheduler's insert fails and
    it leaves the training to the run already claimed.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a worker"
        RUNNING = "running", "Training"
        DONE = "done", "Done"
        SKIPPED = "skipped", "Skipped (not enough labels)"
        FAILED = "failed", "Failed"

    ACTIVE = (Status.PENDING, Status.RUNNING)

    review = models.ForeignKey(
        "screening.Review", on_delete=models.CASCADE, related_name="ranking_runs"
    )
    stage = models.ForeignKey("screening.Stage", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    model_name = models.CharField(max_length=40, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decisions_seen = models.PositiveIntegerField(
        default=0, help_text="Decisions in the stage when this run was scheduled."
    )
    labelled = models.PositiveIntegerField(default=0)
    relevant = models.PositiveIntegerField(default=0)
    scored = models.PositiveIntegerField(
        default=0, help_text="Unscreened studies given a priority."
    )
    train_seconds = models.FloatField(null=True, blank=True)
    write_seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["review"],
                condition=Q(status__in=["pending", "running"]),
                name="ranking_run_one_active_per_review",
            ),
        ]
        indexes = [models.Index(fields=["stage", "status", "-created_at"])]

    def __str__(self) -> str:
        return f"ranking run {self.pk} of {self.stage} ({self.status})"
