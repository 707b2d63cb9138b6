"""Notes and tags on studies: a discussion thread per study, and labels to sort studies by."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Tag(models.Model):
    """A label for studies: the review's own (no owner, managed by the owners, seen by every
    member) or a reviewer's private one (`owner` set, seen by that reviewer only)."""

    review = models.ForeignKey("screening.Review", on_delete=models.CASCADE, related_name="tags")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="The reviewer whose private tag this is; empty for the review's tags.",
    )
    name = models.CharField(max_length=60)
    colour = models.CharField(max_length=7, default="#6c757d", help_text="#rrggbb")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["review", "name"],
                condition=Q(owner__isnull=True),
                name="tag_unique_review_name",
            ),
            models.UniqueConstraint(
                fields=["review", "owner", "name"],
                condition=Q(owner__isnull=False),
                name="tag_unique_private_name",
            ),
            models.CheckConstraint(
                condition=Q(colour__regex=r"^#[0-9a-fA-F]{6}$"), name="tag_colour_hex"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class StudyTag(models.Model):
    """A tag applied to a study."""

    study = models.ForeignKey(
        "screening.Study", on_delete=models.CASCADE, related_name="tagged", db_index=False
    )
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="applied")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tag__name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "tag"], name="study_tag_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.tag} on study {self.study_id}"


class StudyNote(models.Model):
    """One message in a study's discussion thread.

    `stage` is where the study waited when the note was written: in blind mode another
    reviewer's note stays hidden until the study is resolved at that stage.
    """

    study = models.ForeignKey(
        "screening.Study", on_delete=models.CASCADE, related_name="notes", db_index=False
    )
    stage = models.ForeignKey(
        "screening.Stage", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="study_notes"
    )
    text = models.TextField()
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["study", "created_at"])]

    def __str__(self) -> str:
        return f"note {self.pk} by {self.author_id} on study {self.study_id}"
