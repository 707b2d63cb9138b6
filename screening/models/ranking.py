from django.conf import settings
from django.db import models
from django.db.models import Q


class RankingSettings(models.Model):
    """The owner's prioritisation settings of one stage (queue order itself is Stage.queue_order).

    `retrain_every` is K: a training is scheduled after every K new decisions in the stage.
    `stop_after_irrelevant` is the stopping hint: the progress panel flags when that many
    consecutive irrelevant decisions have been made since the last include (0 = no hint).
    `recall_target` and `confidence` parameterise the BUSCAR stopping rule
    (`screening.domain.stopping`): the stage may be stopped once "recall < target" is rejected
    at that confidence. `version` grows with every write (stale forms are refused).
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
    recall_target = models.FloatField(
        default=0.95, help_text="Stopping rule: the recall the team wants to reach (0.5-0.999)."
    )
    confidence = models.FloatField(
        default=0.95, help_text="Stopping rule: confidence that the target is reached (0.5-0.999)."
    )
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(retrain_every__gte=1) & Q(retrain_every__lte=500),
                name="ranking_settings_k_range",
            ),
            models.CheckConstraint(
                condition=Q(recall_target__gte=0.5) & Q(recall_target__lte=0.999),
                name="ranking_settings_target_range",
            ),
            models.CheckConstraint(
                condition=Q(confidence__gte=0.5) & Q(confidence__lte=0.999),
                name="ranking_settings_confidence_range",
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
    stage = models.ForeignKey(
        "screening.Stage", on_delete=models.CASCADE, related_name="+", db_index=False
    )
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
    heartbeat_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Last sign of life of a running run: a large stage's retrain beats after each "
        "chunk it scores, so a long run is not taken for a lost one.",
    )
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


class StageStop(models.Model):
    """The owner stopped a stage's screening because a stopping rule was met.

    The studies still unscreened then (no decision in the stage) leave the queue as excluded by
    an automation tool (PRISMA 2020's "records marked as ineligible by automation tools"); the
    evidence is what the rule said at that moment. Undoing it puts them back in the queue; the
    row stays, with who undid it and when. At most one stop of a stage is in force.
    """

    review = models.ForeignKey(
        "screening.Review", on_delete=models.CASCADE, related_name="stage_stops"
    )
    stage = models.ForeignKey("screening.Stage", on_delete=models.CASCADE, related_name="stops")
    rule = models.CharField(max_length=20, default="buscar")
    recall_target = models.FloatField()
    confidence = models.FloatField()
    p_value = models.FloatField()
    screened = models.PositiveIntegerField(help_text="Studies screened when the stage stopped.")
    relevant_found = models.PositiveIntegerField()
    records = models.PositiveIntegerField(help_text="Studies in the stage, screened or not.")
    recall_estimate = models.FloatField(null=True, blank=True)
    recall_lower = models.FloatField(null=True, blank=True)
    # Ids of the studies it excluded (a list, as the backup carries id lists; a study deleted
    # since simply is not restored by an undo).
    study_ids = models.JSONField(default=list, blank=True)
    excluded = models.PositiveIntegerField(help_text="Studies excluded automatically.")
    audit_sample_size = models.PositiveIntegerField(null=True, blank=True)
    audit_sample_screened = models.PositiveIntegerField(null=True, blank=True)
    audit_sample_relevant = models.PositiveIntegerField(null=True, blank=True)
    stopped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    stopped_at = models.DateTimeField(auto_now_add=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-stopped_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["stage"],
                condition=Q(undone_at__isnull=True),
                name="stage_stop_one_in_force",
            ),
        ]

    def __str__(self) -> str:
        return f"stop of {self.stage} ({self.excluded} excluded automatically)"


class AuditSample(models.Model):
    """A random sample of a stage's unscreened studies, drawn at the owner's request, that the
    team screens like any other study (nobody is told which studies are in it). Its result
    (relevant studies among those screened) is evidence beside the stopping rule: a random
    sample, unlike the ranked queue, estimates how many relevant studies are left. The sampled
    studies go to the front of the queue and keep their place through retrainings. One sample
    per stage."""

    review = models.ForeignKey(
        "screening.Review", on_delete=models.CASCADE, related_name="audit_samples"
    )
    stage = models.OneToOneField(
        "screening.Stage", on_delete=models.CASCADE, related_name="audit_sample"
    )
    size = models.PositiveIntegerField()
    population = models.PositiveIntegerField(help_text="Unscreened studies it was drawn from.")
    study_ids = models.JSONField(default=list, help_text="Ids of the sampled studies.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"audit sample of {self.size} in {self.stage}"


class StudyPriority(models.Model):
    """A study's place in a prioritised queue: its predicted relevance (higher first), written
    by the ranking of `stage` (or an audit sample drawn there). The queue of a stage reads the
    rows of that stage only: a study that moved on to another stage is unranked there until
    that stage's ranking writes it.

    A narrow table of its own, not a column of Study: a retrain rewrites thousands of these
    every few seconds, and on the study row (its stored search tsvector, GIN and eight other
    indexes) each write rewrote the row and every index, and locked it against the decisions
    taking it. The ranking never writes a study row.
    """

    study = models.OneToOneField(
        "screening.Study",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="queue_priority",
    )
    # No index of its own: the queue's index starts with the stage (every write to a row
    # updates each index, and a retrain rewrites thousands of rows).
    stage = models.ForeignKey(
        "screening.Stage", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    priority = models.FloatField()

    class Meta:
        indexes = [
            # The stage's ranked queue, walked in order: priority descending, then study id.
            models.Index(fields=["stage", "-priority", "study"], name="study_priority_queue"),
        ]

    def __str__(self) -> str:
        return f"priority {self.priority:.3f} of study {self.study_id} in stage {self.stage_id}"
