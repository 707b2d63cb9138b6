from django.conf import settings
from django.db import models


class Verdict(models.TextChoices):
    INCLUDE = "include", "Include"
    UNCERTAIN = "uncertain", "Uncertain"
    EXCLUDE = "exclude", "Exclude"


class Decision(models.Model):
    """One reviewer's verdict on one study in one stage."""

    Verdict = Verdict

    review = models.ForeignKey(
        "screening.Review", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    study = models.ForeignKey(
        "screening.Study", on_delete=models.CASCADE, related_name="decisions", db_index=False
    )
    stage = models.ForeignKey(
        "screening.Stage", on_delete=models.CASCADE, related_name="decisions", db_index=False
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="decisions"
    )
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    reasons = models.ManyToManyField("screening.Criterion", blank=True, related_name="decisions")
    note = models.TextField(blank=True)
    # Incremented on every change: a form carries the version it showed (stale writes).
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "stage", "reviewer"], name="decision_unique_reviewer"
            ),
        ]
        indexes = [
            models.Index(fields=["review", "stage", "reviewer"]),
            # The ranking's due check counts the stage's decisions since its last run.
            models.Index(fields=["stage", "updated_at"], name="decision_stage_updated"),
            # The reviewer's latest decision in the stage (Undo), in one index step.
            models.Index(
                fields=["stage", "reviewer", "created_at", "id"], name="decision_stage_latest"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer} {self.verdict} study {self.study_id} at {self.stage}"


class Resolution(models.Model):
    """The outcome of a study in a stage: by agreement of the decisions or by an adjudicator."""

    class Method(models.TextChoices):
        AGREEMENT = "agreement", "Reviewers agreed"
        ADJUDICATION = "adjudication", "Adjudicated"

    Verdict = Verdict

    review = models.ForeignKey(
        "screening.Review", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    study = models.ForeignKey(
        "screening.Study",
        on_delete=models.CASCADE,
        related_name="resolutions",
        db_index=False,
    )
    stage = models.ForeignKey(
        "screening.Stage", on_delete=models.CASCADE, related_name="resolutions"
    )
    verdict = models.CharField(max_length=20, choices=Verdict.choices)
    method = models.CharField(max_length=20, choices=Method.choices)
    reasons = models.ManyToManyField("screening.Criterion", blank=True, related_name="resolutions")
    # The one reason an exclusion is reported under (PRISMA counts one per excluded report);
    # the other `reasons` are kept as secondary. Empty on outcomes recorded before it existed.
    primary_reason = models.ForeignKey(
        "screening.Criterion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="primary_for_resolutions",
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "stage"], name="resolution_unique_stage"),
        ]
        indexes = [models.Index(fields=["review", "stage", "verdict"])]

    def __str__(self) -> str:
        return f"study {self.study_id} {self.verdict} at {self.stage}"


class FullText(models.Model):
    """The full text of a study: a private PDF, or a note that it could not be retrieved."""

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "PDF uploaded"
        NOT_RETRIEVABLE = "not_retrievable", "Not retrievable"

    study = models.OneToOneField(
        "screening.Study", on_delete=models.CASCADE, related_name="full_text"
    )
    status = models.CharField(max_length=20, choices=Status.choices)
    file = models.FileField(upload_to="fulltexts/%Y/%m/", blank=True, max_length=300)
    original_name = models.CharField(max_length=255, blank=True)
    reason = models.TextField(blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"full text of study {self.study_id}: {self.status}"


class ScreeningClaim(models.Model):
    """A study handed to a reviewer in a stage and not yet decided.

    A live claim (not skipped, not expired) holds one of the stage's decision slots, so two
    reviewers asking at once are never both sent to a study that needs only one more decision.
    Claims expire, so an abandoned screen frees its study. A skipped claim keeps the study out of
    that reviewer's queue until nothing else is left.
    """

    review = models.ForeignKey("screening.Review", on_delete=models.CASCADE, related_name="+")
    study = models.ForeignKey(
        "screening.Study", on_delete=models.CASCADE, related_name="claims", db_index=False
    )
    stage = models.ForeignKey(
        "screening.Stage", on_delete=models.CASCADE, related_name="claims", db_index=False
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="screening_claims"
    )
    claimed_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    skipped = models.BooleanField(default=False)

    class Meta:
        ordering = ["claimed_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "stage", "reviewer"], name="claim_unique_reviewer"
            ),
            models.CheckConstraint(
                condition=models.Q(expires_at__gte=models.F("claimed_at")),
                name="claim_expires_after_claim",
            ),
        ]
        indexes = [
            models.Index(fields=["stage", "reviewer", "skipped", "expires_at"]),
            models.Index(fields=["study", "stage", "expires_at"]),
        ]

    def __str__(self) -> str:
        return f"study {self.study_id} claimed by {self.reviewer_id} at {self.stage_id}"


class Adjudicator(models.Model):
    """A member the owner designated to resolve this review's conflicts (owners always can)."""

    review = models.ForeignKey(
        "screening.Review",
        on_delete=models.CASCADE,
        related_name="adjudicators",
        db_index=False,
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    designated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["review", "user"], name="adjudicator_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} adjudicates {self.review}"
