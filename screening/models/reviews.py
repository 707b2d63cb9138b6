from django.conf import settings
from django.db import models
from django.db.models import Q


class Review(models.Model):
    class ScreeningMode(models.TextChoices):
        STAGED = (
            "staged",
            (
                "Title first: an include goes straight to full text, an uncertain one to abstract "
                "screening"
            ),
        )
        COMBINED = "combined", "Title and abstract together, then full text"

    class QualityScale(models.TextChoices):
        YES_NO = "yes_no", "Yes = 1, No = 0"
        YES_PARTLY_NO = "yes_partly_no", "Yes = 1, Partly = 0.5, No = 0"

    slug = models.SlugField(max_length=60, unique=True)
    title = models.CharField(max_length=300)
    objectives = models.TextField(blank=True)
    screening_mode = models.CharField(
        max_length=20, choices=ScreeningMode.choices, default=ScreeningMode.STAGED
    )
    blind_mode = models.BooleanField(
        default=True, help_text="Hide each reviewer's decisions from the others until resolved."
    )
    quality_scale = models.CharField(
        max_length=20, choices=QualityScale.choices, default=QualityScale.YES_NO
    )
    quality_threshold = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Exclude studies whose total quality score is below this (empty: off).",
    )
    highlight_include_terms = models.TextField(
        blank=True, help_text="Terms highlighted in green while screening, one per line."
    )
    highlight_exclude_terms = models.TextField(
        blank=True, help_text="Terms highlighted in red while screening, one per line."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1)  # bumped on every edit (stale writes)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        REVIEWER = "reviewer", "Reviewer"
        VIEWER = "viewer", "Viewer"

    review = models.ForeignKey(
        Review, on_delete=models.CASCADE, related_name="memberships", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.REVIEWER)
    can_import = models.BooleanField(
        default=True, help_text="Reviewers may upload search exports (owners always can)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["review", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["review", "user"], name="membership_unique_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.review}"


class ResearchQuestion(models.Model):
    review = models.ForeignKey(
        Review, on_delete=models.CASCADE, related_name="research_questions", db_index=False
    )
    code = models.CharField(max_length=20)
    text = models.TextField()
    theme = models.CharField(max_length=200, blank=True)
    position = models.PositiveIntegerField(default=0)
    version = models.PositiveIntegerField(default=1)  # bumped on every edit (stale writes)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["review", "code"], name="rq_unique_code"),
        ]

    def __str__(self) -> str:
        return f"{self.code}: {self.text}"


class Criterion(models.Model):
    """An inclusion or exclusion criterion of the protocol.

    `other` reasons (for example "invalid publication type", "duplicate") are exclusion reasons
    offered beside the protocol's criteria at full text, and reported apart in the funnel.
    """

    class Kind(models.TextChoices):
        INCLUSION = "inclusion", "Inclusion"
        EXCLUSION = "exclusion", "Exclusion"
        OTHER = "other", "Other exclusion reason"

    review = models.ForeignKey(
        Review, on_delete=models.CASCADE, related_name="criteria", db_index=False
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    code = models.CharField(max_length=20)
    text = models.TextField()
    position = models.PositiveIntegerField(default=0)
    version = models.PositiveIntegerField(default=1)  # bumped on every edit (stale writes)

    class Meta:
        ordering = ["kind", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["review", "code"], name="criterion_unique_code"),
        ]

    def __str__(self) -> str:
        return f"{self.code}: {self.text}"


class QualityCriterion(models.Model):
    review = models.ForeignKey(
        Review, on_delete=models.CASCADE, related_name="quality_criteria", db_index=False
    )
    code = models.CharField(max_length=20)
    text = models.TextField()
    position = models.PositiveIntegerField(default=0)
    version = models.PositiveIntegerField(default=1)  # bumped on every edit (stale writes)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["review", "code"], name="qc_unique_code"),
        ]

    def __str__(self) -> str:
        return f"{self.code}: {self.text}"


class Source(models.Model):
    """A digital library (or other origin) that records are imported from."""

    review = models.ForeignKey(
        Review, on_delete=models.CASCADE, related_name="sources", db_index=False
    )
    name = models.CharField(max_length=120)
    position = models.PositiveIntegerField(default=0)
    version = models.PositiveIntegerField(default=1)  # bumped on every edit (stale writes)

    class Meta:
        ordering = ["position", "name"]
        constraints = [
            models.UniqueConstraint(fields=["review", "name"], name="source_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class SearchString(models.Model):
    review = models.ForeignKey(
        Review, on_delete=models.CASCADE, related_name="search_strings", db_index=False
    )
    text = models.TextField()
    position = models.PositiveIntegerField(default=0)
    version = models.PositiveIntegerField(default=1)  # bumped on every edit (stale writes)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["review", "text"], name="search_string_unique_text"),
        ]

    def __str__(self) -> str:
        return self.text


class SearchRun(models.Model):
    """One search string run in one source on a date, with the hits the library reported."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="search_runs")
    search_string = models.ForeignKey(
        SearchString, on_delete=models.CASCADE, related_name="runs", db_index=False
    )
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="runs")
    run_on = models.DateField(null=True, blank=True)
    hits_reported = models.PositiveIntegerField()
    note = models.CharField(max_length=300, blank=True)
    # Empty for the review's original searches (round 1): a review that never opened an update
    # needs no round rows, and its runs, backups and funnel stay exactly as they were.
    round = models.ForeignKey(
        "screening.SearchRound",
        on_delete=models.RESTRICT,
        null=True,
        blank=True,
        related_name="runs",
    )
    version = models.PositiveIntegerField(default=1)  # bumped on every edit (stale writes)

    class Meta:
        ordering = ["search_string__position", "source__position", "run_on"]
        constraints = [
            models.UniqueConstraint(
                fields=["search_string", "source", "run_on"],
                name="search_run_unique",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.search_string} @ {self.source}: {self.hits_reported}"


class Stage(models.Model):
    """A screening stage with its routing: where each outcome sends a study.

    Routes name another stage's key of the same review, or one of the terminal outcomes
    `included` / `excluded`.
    """

    class Kind(models.TextChoices):
        TITLE = "title", "Title"
        ABSTRACT = "abstract", "Abstract"
        TITLE_ABSTRACT = "title_abstract", "Title and abstract"
        FULL_TEXT = "full_text", "Full text"

    class Consensus(models.TextChoices):
        UNANIMOUS = "unanimous", "Unanimous (disagreements go to conflicts)"
        LIBERAL = "liberal", "Any include forwards the study"
        MAJORITY = "majority", "Majority decides (ties go to conflicts)"

    class QueueOrder(models.TextChoices):
        PRIORITISED = "prioritised", "Most likely relevant first (active learning)"
        RANDOM = "random", "Random order"

    INCLUDED = "included"
    EXCLUDED = "excluded"

    review = models.ForeignKey(
        Review, on_delete=models.CASCADE, related_name="stages", db_index=False
    )
    key = models.SlugField(max_length=40)
    name = models.CharField(max_length=80)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    position = models.PositiveIntegerField(default=0)
    reviewers_required = models.PositiveSmallIntegerField(default=2)
    consensus_rule = models.CharField(
        max_length=20, choices=Consensus.choices, default=Consensus.UNANIMOUS
    )
    reasons_required = models.BooleanField(
        default=False, help_text="An exclusion must name at least one reason."
    )
    route_include = models.CharField(max_length=40)
    route_uncertain = models.CharField(max_length=40)
    route_exclude = models.CharField(max_length=40, default=EXCLUDED)
    is_entry = models.BooleanField(default=False, help_text="New studies start in this stage.")
    queue_order = models.CharField(
        max_length=20, choices=QueueOrder.choices, default=QueueOrder.PRIORITISED
    )
    parties_may_resolve = models.BooleanField(
        "Parties may resolve their own conflicts",
        default=False,
        help_text="An adjudicator may resolve a conflict they took part in (off: someone else "
        "settles it).",
    )
    version = models.PositiveIntegerField(default=1)  # bumped on every edit (stale writes)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["review", "key"], name="stage_unique_key"),
            models.UniqueConstraint(
                fields=["review"], condition=Q(is_entry=True), name="stage_one_entry"
            ),
            models.CheckConstraint(
                condition=Q(reviewers_required__gte=1), name="stage_reviewers_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def shows_abstract(self) -> bool:
        return self.kind != self.Kind.TITLE
