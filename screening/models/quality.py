from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

# Every answer scale is a subset of these values (Yes = 1, Partly = 0.5, No = 0).
ANSWER_VALUES = [Decimal("0"), Decimal("0.5"), Decimal("1")]


class Assignment(models.Model):
    """A reviewer assigned to a study; at most two per study (slots 1 and 2).

    The slot makes "one or two per study" a database invariant and gives kappa a stable
    first and second rater.
    """

    study = models.ForeignKey("screening.Study", on_delete=models.CASCADE, related_name="+")
    slot = models.PositiveSmallIntegerField()
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class QualityAssignment(Assignment):
    study = models.ForeignKey(
        "screening.Study",
        on_delete=models.CASCADE,
        related_name="quality_assignments",
        db_index=False,
    )
    assessor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="quality_assignments"
    )
    completed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set when the assessor marks the study done; once every assessor has, the "
        "answers are revealed to each other and the consensus is derived.",
    )

    class Meta:
        ordering = ["study", "slot"]
        constraints = [
            models.UniqueConstraint(fields=["study", "assessor"], name="quality_assign_unique"),
            models.UniqueConstraint(fields=["study", "slot"], name="quality_assign_slot_unique"),
            models.CheckConstraint(condition=Q(slot__in=[1, 2]), name="quality_assign_slot"),
        ]

    def __str__(self) -> str:
        return f"{self.assessor_id} assesses study {self.study_id}"


class QualityAnswer(models.Model):
    """One assessor's answer to one quality criterion for one study."""

    study = models.ForeignKey(
        "screening.Study",
        on_delete=models.CASCADE,
        related_name="quality_answers",
        db_index=False,
    )
    criterion = models.ForeignKey(
        "screening.QualityCriterion", on_delete=models.CASCADE, related_name="answers"
    )
    assessor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="quality_answers"
    )
    answer = models.DecimalField(max_digits=4, decimal_places=2)
    justification = models.TextField(blank=True)
    # Changing an answer after the assessors saw each other's answers is a revision: the answer
    # given blind is kept (agreement statistics use it) and the change is shown and audited.
    answer_at_reveal = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True)
    revised_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["study", "criterion", "assessor"], name="quality_answer_unique"
            ),
            models.CheckConstraint(
                condition=Q(answer__in=ANSWER_VALUES), name="quality_answer_on_scale"
            ),
            models.CheckConstraint(
                condition=Q(answer_at_reveal__isnull=True) | Q(answer_at_reveal__in=ANSWER_VALUES),
                name="quality_answer_at_reveal_on_scale",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.assessor_id} on {self.criterion_id} for study {self.study_id}: {self.answer}"


class QualityConsensus(models.Model):
    """The agreed answer for a study and criterion; totals are derived from these.

    `agreement` rows are written by the answer service when every assigned assessor gave the
    same answer; `adjudicated` rows are the owner's decision on a disagreement.
    """

    class Method(models.TextChoices):
        AGREEMENT = "agreement", "Assessors agreed"
        ADJUDICATED = "adjudicated", "Decided by the owner"

    study = models.ForeignKey(
        "screening.Study",
        on_delete=models.CASCADE,
        related_name="quality_consensus",
        db_index=False,
    )
    criterion = models.ForeignKey(
        "screening.QualityCriterion", on_delete=models.CASCADE, related_name="consensus"
    )
    answer = models.DecimalField(max_digits=4, decimal_places=2)
    method = models.CharField(max_length=20, choices=Method.choices, default=Method.AGREEMENT)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    note = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "criterion"], name="quality_consensus_unique"),
            models.CheckConstraint(
                condition=Q(answer__in=ANSWER_VALUES), name="quality_consensus_on_scale"
            ),
        ]

    def __str__(self) -> str:
        return f"consensus on {self.criterion_id} for study {self.study_id}: {self.answer}"


class ExtractionField(models.Model):
    class Kind(models.TextChoices):
        TEXT = "text", "Short text"
        LONG_TEXT = "long_text", "Long text"
        NUMBER = "number", "Number"
        CHOICE = "choice", "Single choice"
        MULTI_CHOICE = "multi_choice", "Multiple choice"
        YES_NO = "yes_no", "Yes / no"

    review = models.ForeignKey(
        "screening.Review",
        on_delete=models.CASCADE,
        related_name="extraction_fields",
        db_index=False,
    )
    research_question = models.ForeignKey(
        "screening.ResearchQuestion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="extraction_fields",
    )
    key = models.SlugField(max_length=60)
    label = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    choices = models.JSONField(default=list, blank=True)
    help_text = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0)
    is_contribution = models.BooleanField(
        default=False,
        help_text="A yes/no flag 'contributes to this research question': counted per theme.",
    )

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["review", "key"], name="extraction_field_unique_key"),
            models.UniqueConstraint(
                fields=["research_question"],
                condition=Q(is_contribution=True),
                name="extraction_one_contribution_flag",
            ),
            models.CheckConstraint(
                # No research question condition: deleting a question sets it to null first.
                condition=Q(is_contribution=False) | Q(kind="yes_no"),
                name="extraction_contribution_is_yes_no",
            ),
        ]

    def __str__(self) -> str:
        return self.label


class ExtractionAssignment(Assignment):
    study = models.ForeignKey(
        "screening.Study",
        on_delete=models.CASCADE,
        related_name="extraction_assignments",
        db_index=False,
    )
    extractor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="extraction_assignments"
    )
    completed_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when the extractor marks the study done."
    )

    class Meta:
        ordering = ["study", "slot"]
        constraints = [
            models.UniqueConstraint(fields=["study", "extractor"], name="extraction_assign_unique"),
            models.UniqueConstraint(fields=["study", "slot"], name="extraction_assign_slot_unique"),
            models.CheckConstraint(condition=Q(slot__in=[1, 2]), name="extraction_assign_slot"),
        ]

    def __str__(self) -> str:
        return f"{self.extractor_id} extracts study {self.study_id}"


class ExtractionValue(models.Model):
    """A value of a field for a study: per extractor, or the reconciled one (extractor null).

    A reconciled row with `reconciled_by` null was derived from agreeing extractors; with an
    owner set, the owner chose it.
    """

    study = models.ForeignKey(
        "screening.Study",
        on_delete=models.CASCADE,
        related_name="extraction_values",
        db_index=False,
    )
    field = models.ForeignKey(ExtractionField, on_delete=models.CASCADE, related_name="values")
    extractor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="extraction_values",
    )
    value = models.JSONField(null=True, blank=True)
    reconciled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["study", "field", "extractor"],
                name="extraction_value_unique",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.field_id} for study {self.study_id}"
