from django.conf import settings
from django.db import models


class QualityAnswer(models.Model):
    """One assessor's answer to one quality criterion for one study."""

    study = models.ForeignKey(
        "screening.Study", on_delete=models.CASCADE, related_name="quality_answers"
    )
    criterion = models.ForeignKey(
        "screening.QualityCriterion", on_delete=models.CASCADE, related_name="answers"
    )
    assessor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="quality_answers"
    )
    answer = models.DecimalField(max_digits=4, decimal_places=2)
    justification = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["study", "criterion", "assessor"], name="quality_answer_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.assessor_id} on {self.criterion_id} for study {self.study_id}: {self.answer}"


class QualityConsensus(models.Model):
    """The agreed answer for a study and criterion; totals are derived from these."""

    study = models.ForeignKey(
        "screening.Study", on_delete=models.CASCADE, related_name="quality_consensus"
    )
    criterion = models.ForeignKey(
        "screening.QualityCriterion", on_delete=models.CASCADE, related_name="consensus"
    )
    answer = models.DecimalField(max_digits=4, decimal_places=2)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    note = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "criterion"], name="quality_consensus_unique"),
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
        "screening.Review", on_delete=models.CASCADE, related_name="extraction_fields"
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

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["review", "key"], name="extraction_field_unique_key"),
        ]

    def __str__(self) -> str:
        return self.label


class ExtractionValue(models.Model):
    """A value of a field for a study: per extractor, or the reconciled one (extractor null)."""

    study = models.ForeignKey(
        "screening.Study", on_delete=models.CASCADE, related_name="extraction_values"
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
