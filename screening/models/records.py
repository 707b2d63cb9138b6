from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Mod


class ImportBatch(models.Model):
    """One uploaded export file and its per-file import report."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a worker"
        RUNNING = "running", "Importing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    review = models.ForeignKey(
        "screening.Review", on_delete=models.CASCADE, related_name="batches", db_index=False
    )
    # RESTRICT, not PROTECT: a source with imports cannot be deleted on its own, but deleting
    # the review deletes its sources and batches together.
    source = models.ForeignKey(
        "screening.Source", on_delete=models.RESTRICT, related_name="batches"
    )
    search_run = models.ForeignKey(
        "screening.SearchRun",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="batches",
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    file = models.FileField(upload_to="imports/%Y/%m/", max_length=300)
    original_name = models.CharField(max_length=255)
    size_bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    format = models.CharField(max_length=20, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    records_read = models.PositiveIntegerField(default=0)
    with_title = models.PositiveIntegerField(default=0)
    with_abstract = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    column_map = models.JSONField(
        default=dict,
        blank=True,
        help_text="Field -> column header chosen by a person for a table whose columns are "
        "unknown (empty: the importer's own map).",
    )
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="How many times a worker started importing this file."
    )
    queued_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the import task was last handed to the broker (empty: not yet; the "
        "periodic sweep sends it).",
    )
    heartbeat_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Last sign of life of the worker importing this file.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["review", "sha256"], name="batch_unique_file"),
            models.CheckConstraint(condition=Q(progress__lte=100), name="batch_progress_max"),
        ]
        indexes = [models.Index(fields=["status", "queued_at"], name="batch_sweep")]

    def __str__(self) -> str:
        return self.original_name


# A multiplicative hash of the id modulo a prime (both below 2**32): a stable shuffle of the
# studies that an expression index can serve, used by the random screening queue order.
STUDY_SHUFFLE_MULTIPLIER = 2654435761
STUDY_SHUFFLE_MODULUS = 4294967291
STUDY_SHUFFLE_KEY = Mod(
    models.F("id") * STUDY_SHUFFLE_MULTIPLIER,
    STUDY_SHUFFLE_MODULUS,
    output_field=models.BigIntegerField(),
)


class Study(models.Model):
    """The deduplicated unit that is screened; it holds one or more Records.

    Its bibliographic fields are the most complete values among its records. `current_stage`
    and `outcome` are the routing state written by the screening services from resolutions.
    """

    class Outcome(models.TextChoices):
        SCREENING = "screening", "In screening"
        INCLUDED = "included", "Included"
        EXCLUDED = "excluded", "Excluded"
        NOT_RETRIEVED = "not_retrieved", "Full text not retrievable"
        # Left unscreened when the owner stopped the stage on a stopping rule (StageStop).
        EXCLUDED_AUTOMATIC = "excluded_automatic", "Excluded by a stopping rule"

    review = models.ForeignKey(
        "screening.Review", on_delete=models.CASCADE, related_name="studies", db_index=False
    )
    title = models.TextField(blank=True)
    abstract = models.TextField(blank=True)
    authors = models.JSONField(default=list, blank=True)
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    venue = models.TextField(blank=True)
    doi = models.CharField(max_length=255, blank=True)
    pmid = models.CharField(max_length=32, blank=True)
    url = models.URLField(max_length=1000, blank=True)
    keywords = models.JSONField(default=list, blank=True)
    publication_type = models.CharField(max_length=100, blank=True)
    current_stage = models.ForeignKey(
        "screening.Stage",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="studies_waiting",
        db_index=False,
    )
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.SCREENING)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "studies"
        indexes = [
            models.Index(fields=["review", "current_stage", "outcome"]),
            models.Index(fields=["review", "doi"]),
            # The screening queue's unranked studies (no StudyPriority for the stage), by id;
            # the ranked ones are walked in StudyPriority's own index.
            models.Index(fields=["current_stage", "outcome", "id"], name="study_queue_unranked"),
            # The random queue order: a fixed pseudo-random permutation of the ids, which each
            # reviewer walks from their own starting point.
            models.Index(
                models.F("current_stage"),
                models.F("outcome"),
                STUDY_SHUFFLE_KEY,
                models.F("id"),
                name="study_queue_shuffle",
            ),
        ]

    def __str__(self) -> str:
        return self.title[:80] or f"Study {self.pk}"


class Record(models.Model):
    """One entry imported from one file, normalised, with the raw entry kept as JSON."""

    review = models.ForeignKey(
        "screening.Review", on_delete=models.CASCADE, related_name="records", db_index=False
    )
    batch = models.ForeignKey(
        ImportBatch, on_delete=models.CASCADE, related_name="records", db_index=False
    )
    study = models.ForeignKey(
        Study, on_delete=models.SET_NULL, null=True, blank=True, related_name="records"
    )
    position = models.PositiveIntegerField(help_text="Index of the entry in its file, from 1.")
    title = models.TextField(blank=True)
    abstract = models.TextField(blank=True)
    authors = models.JSONField(default=list, blank=True)
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    venue = models.TextField(blank=True)
    volume = models.CharField(max_length=60, blank=True)
    issue = models.CharField(max_length=60, blank=True)
    pages = models.CharField(max_length=60, blank=True)
    doi = models.CharField(max_length=255, blank=True)
    pmid = models.CharField(max_length=32, blank=True)
    url = models.TextField(blank=True)
    keywords = models.JSONField(default=list, blank=True)
    publication_type = models.CharField(max_length=100, blank=True)
    language = models.CharField(max_length=60, blank=True)
    source_record_id = models.CharField(max_length=200, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    dedup_features = models.JSONField(
        null=True,
        blank=True,
        editable=False,
        help_text="What duplicate detection's near scan reads of this record, normalised "
        "(screening.domain.dedup.ScanFeatures.stored), written when the record is grouped: "
        "later runs read it instead of normalising every grouped record again. Empty until "
        "then, or recomputed when stored by another version of the normalisation.",
    )

    class Meta:
        ordering = ["batch", "position"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "position"], name="record_unique_position"),
        ]
        indexes = [
            models.Index(fields=["review", "doi"]),
            models.Index(fields=["review", "study"]),
        ]

    def __str__(self) -> str:
        return self.title[:80] or f"Record {self.pk}"


class DuplicateCandidate(models.Model):
    """A possible duplicate pair of studies in the grey zone, awaiting a human."""

    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting a decision"
        DUPLICATE = "duplicate", "Duplicate"
        NOT_DUPLICATE = "not_duplicate", "Not a duplicate"

    review = models.ForeignKey(
        "screening.Review", on_delete=models.CASCADE, related_name="duplicate_candidates"
    )
    record_a = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="+", db_index=False)
    record_b = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="+")
    score = models.FloatField()
    reason = models.CharField(max_length=300)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-score", "id"]
        constraints = [
            models.UniqueConstraint(fields=["record_a", "record_b"], name="candidate_unique_pair"),
            models.CheckConstraint(
                condition=Q(record_a__lt=models.F("record_b")), name="candidate_ordered_pair"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.record_a_id} ~ {self.record_b_id} ({self.score:.2f})"
