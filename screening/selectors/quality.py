"""Reads of quality assessment: overview, per-study sheet, Table 5, agreement, threshold."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict

from django.contrib.auth.models import User
from django.db.models import Count, DecimalField, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from ..domain import quality as rules
from ..domain.agreement import cohen_kappa
from ..domain.extraction import spreadsheet_text
from ..models import (
    Membership,
    QualityAnswer,
    QualityAssignment,
    QualityConsensus,
    QualityCriterion,
    Review,
    Study,
)

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class QualityScores(TypedDict):
    """What `quality_scored_studies` adds to each study."""

    consensus_count: int
    quality_total: Decimal


WRITER_ROLES = (Membership.Role.OWNER, Membership.Role.REVIEWER)


def quality_scale_options(*, review: Review) -> tuple[rules.AnswerOption, ...]:
    """The answers the review's scale offers, with their keys (y / p / n) and values."""
    return rules.scale_options(review.quality_scale)


def quality_included_studies(*, review: Review) -> QuerySet[Study]:
    return Study.objects.filter(review=review, outcome=Study.Outcome.INCLUDED).order_by("id")


def quality_assessor_candidates(*, review: Review) -> QuerySet[Membership]:
    """Members who may be assigned: reviewers and owners."""
    return (
        Membership.objects.filter(review=review, role__in=WRITER_ROLES)
        .select_related("user")
        .order_by("user__username")
    )


def quality_scored_studies(*, review: Review) -> QuerySet[WithAnnotations[Study, QualityScores]]:
    """Included studies with `consensus_count` and `quality_total` (sum of consensus answers)."""
    return quality_included_studies(review=review).annotate(
        consensus_count=Count("quality_consensus", distinct=True),
        quality_total=Coalesce(
            Sum("quality_consensus__answer"),
            Value(Decimal("0")),
            output_field=DecimalField(max_digits=6, decimal_places=2),
        ),
    )


def quality_excluded_studies(*, review: Review) -> QuerySet[Study]:
    """Included studies whose complete quality total is below the review's threshold.

    Empty while the threshold is off (the seed's setting) or for studies not fully scored;
    the funnel reports these as their own exclusion reason.
    """
    if review.quality_threshold is None:
        return Study.objects.none()
    criteria = review.quality_criteria.count()
    if criteria == 0:
        return Study.objects.none()
    return quality_scored_studies(review=review).filter(
        consensus_count=criteria, quality_total__lt=review.quality_threshold
    )


# How the funnel names the studies of `quality_excluded_studies` among its exclusion reasons.
QUALITY_EXCLUSION_REASON = "Quality score below the threshold"


def quality_retained_studies(*, review: Review) -> QuerySet[Study]:
    """Included studies that the quality threshold (when on) does not exclude.

    These are the studies that data extraction and synthesis work on.
    """
    excluded = list(quality_excluded_studies(review=review).values_list("pk", flat=True))
    return quality_included_studies(review=review).exclude(pk__in=excluded)


@dataclass
class CriterionCell:
    criterion: QualityCriterion
    # (assessor, QualityAnswer | None) per slot
    answers: list[tuple[User, QualityAnswer | None]] = field(default_factory=list)
    mine: QualityAnswer | None = None
    consensus: QualityConsensus | None = None
    revealed: bool = False  # every assessor marked the study done

    @property
    def complete(self) -> bool:
        return bool(self.answers) and all(a is not None for _, a in self.answers)

    @property
    def given(self) -> list[QualityAnswer]:
        """The answers given so far, in slot order."""
        return [a for _, a in self.answers if a is not None]

    @property
    def disagreement(self) -> bool:
        values = {a.answer for _, a in self.answers if a is not None}
        return self.revealed and self.complete and len(values) > 1

    @property
    def open_disagreement(self) -> bool:
        return self.disagreement and self.consensus is None


@dataclass
class StudyQuality:
    study: Study
    assignments: list[QualityAssignment]
    cells: list[CriterionCell]
    criteria_count: int
    # Blind mode before the reveal: the answers of everyone but the viewing user are left out
    # (None) of `cells`, so no page, fragment, count, colour or export can show them.
    masked: bool = False

    @property
    def assessors(self) -> list[User]:
        return [a.assessor for a in self.assignments]

    @property
    def revealed(self) -> bool:
        return bool(self.assignments) and all(a.completed_at for a in self.assignments)

    @property
    def total(self) -> Decimal | None:
        return rules.total_of(
            (c.consensus.answer if c.consensus else None for c in self.cells),
            self.criteria_count,
        )

    @property
    def consensus_count(self) -> int:
        return sum(1 for c in self.cells if c.consensus is not None)

    @property
    def open_disagreements(self) -> int:
        return sum(1 for c in self.cells if c.open_disagreement)

    def answered_by(self, user_id: int) -> int:
        return sum(
            1 for c in self.cells for who, a in c.answers if who.pk == user_id and a is not None
        )

    def assignment_of(self, user_id: int) -> QualityAssignment | None:
        return next((a for a in self.assignments if a.assessor_id == user_id), None)

    @property
    def status(self) -> str:
        if not self.assignments:
            return "unassigned"
        if self.criteria_count and self.consensus_count == self.criteria_count:
            return "complete"
        if self.open_disagreements:
            return "disagreement"
        return "in_progress"


STATUS_LABELS = {
    "unassigned": "No assessor",
    "in_progress": "In progress",
    "disagreement": "Disagreement",
    "complete": "Complete",
}


def _quality_rows(
    *, review: Review, studies: list[Study], user: User | None = None
) -> list[StudyQuality]:
    """The studies' answers and consensus as `user` may see them (None: as nobody's own)."""
    criteria = list(review.quality_criteria.all())
    study_ids = [s.pk for s in studies]
    assignments: dict[int, list[QualityAssignment]] = defaultdict(list)
    for assignment in QualityAssignment.objects.filter(study_id__in=study_ids).select_related(
        "assessor"
    ):
        assignments[assignment.study_id].append(assignment)
    answers = {
        (a.study_id, a.criterion_id, a.assessor_id): a
        for a in QualityAnswer.objects.filter(study_id__in=study_ids)
    }
    consensus = {
        (c.study_id, c.criterion_id): c
        for c in QualityConsensus.objects.filter(study_id__in=study_ids).select_related(
            "decided_by"
        )
    }
    rows: list[StudyQuality] = []
    for study in studies:
        row = StudyQuality(
            study=study,
            assignments=assignments[study.pk],
            cells=[],
            criteria_count=len(criteria),
        )
        row.masked = review.blind_mode and not row.revealed
        for criterion in criteria:
            cell = CriterionCell(
                criterion=criterion,
                consensus=consensus.get((study.pk, criterion.pk)),
                revealed=row.revealed,
            )
            for assignment in row.assignments:
                answer = answers.get((study.pk, criterion.pk, assignment.assessor_id))
                mine = user is not None and assignment.assessor_id == user.pk
                if row.masked and not mine:
                    answer = None
                cell.answers.append((assignment.assessor, answer))
                if mine:
                    cell.mine = answer
            row.cells.append(cell)
        rows.append(row)
    return rows


def quality_overview(*, review: Review, user: User, status: str = "") -> dict[str, Any]:
    """Every included study with its assessors, progress, disagreements and total."""
    rows = _quality_rows(
        review=review, studies=list(quality_included_studies(review=review)), user=user
    )
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[row.status] += 1
    own = [(r, a) for r in rows if (a := r.assignment_of(user.pk)) is not None]
    mine = [r for r, _ in own]
    unfinished = [r for r, a in own if not a.completed_at]
    if status:
        rows = [r for r in rows if r.status == status]
    return {
        "rows": rows,
        "mine": mine,
        "mine_left": len(unfinished),
        "mine_next": unfinished[0].study if unfinished else None,
        "counts": [(key, label, counts[key]) for key, label in STATUS_LABELS.items()],
        "total_studies": sum(counts.values()),
        "excluded": list(quality_excluded_studies(review=review)),
    }


def quality_study_sheet(*, review: Review, study: Study, user: User) -> StudyQuality:
    return _quality_rows(review=review, studies=[study], user=user)[0]


def quality_study_get(*, review: Review, study_id: int) -> Study | None:
    return quality_included_studies(review=review).filter(pk=study_id).first()


def quality_study_neighbours(
    *, review: Review, study: Study, user: User
) -> dict[str, Study | None]:
    """Previous and next study for keyboard navigation: among the user's own studies when
    they assess any, otherwise (owners, viewers) among all included studies."""
    studies = quality_included_studies(review=review)
    mine = studies.filter(quality_assignments__assessor=user)
    if not mine.exists():
        mine = studies
    return {
        "previous": mine.filter(pk__lt=study.pk).order_by("-pk").first(),
        "next": mine.filter(pk__gt=study.pk).order_by("pk").first(),
    }


SORT_KEYS = ("study", "year", "total")


def _blind_answer(answer: QualityAnswer) -> Decimal:
    """The answer as given before the assessors saw each other's (a revision comes later)."""
    return answer.answer if answer.answer_at_reveal is None else answer.answer_at_reveal


def quality_table5(
    *, review: Review, sort: str = "study", descending: bool = False
) -> dict[str, Any]:
    """Table 5: studies x criteria with consensus answers, totals, averages and kappa."""
    criteria = list(review.quality_criteria.all())
    rows = _quality_rows(review=review, studies=list(quality_included_studies(review=review)))
    codes = [c.code for c in criteria]

    def sort_key(row: StudyQuality) -> tuple[bool, Any, int]:
        value: Any
        if sort in codes:
            consensus = row.cells[codes.index(sort)].consensus
            value = consensus.answer if consensus else None
        elif sort == "year":
            value = row.study.year
        elif sort == "total":
            value = row.total
        else:
            value = (row.study.title or "").lower()
        # Missing values sort last whatever the direction.
        return (value is None) != descending, value if value is not None else 0, row.study.pk

    rows.sort(key=sort_key, reverse=descending)
    averages: list[Decimal | None] = []
    agreement: list[dict[str, Any]] = []
    for index, criterion in enumerate(criteria):
        values = [c.answer for r in rows if (c := r.cells[index].consensus)]
        averages.append(sum(values, Decimal(0)) / len(values) if values else None)
        # The answers given blind, over the studies whose assessors both marked them done.
        cells = [r.cells[index] for r in rows if r.revealed]
        pairs = [
            (_blind_answer(c.given[0]), _blind_answer(c.given[1]))
            for c in cells
            if len(c.answers) == 2 and c.complete
        ]
        kappa = cohen_kappa(pairs)
        agreement.append(
            {
                "criterion": criterion,
                "pairs": len(pairs),
                "agreed": sum(1 for a, b in pairs if a == b),
                "kappa": kappa.kappa,
                "label": kappa.strength,
                "undefined_reason": kappa.undefined_reason,
            }
        )
    totals = [r.total for r in rows if r.total is not None]
    return {
        "criteria": criteria,
        "rows": rows,
        "averages": averages,
        "average_total": sum(totals) / len(totals) if totals else None,
        "complete": len(totals),
        "agreement": agreement,
        "sort": sort if sort in codes or sort in SORT_KEYS else "study",
        "descending": descending,
        "max_total": len(criteria),
        "threshold": review.quality_threshold,
    }


def _score(value: Decimal | None) -> str:
    return "" if value is None else f"{value.normalize():f}"


def quality_table5_csv_rows(
    *, review: Review, sort: str = "study", descending: bool = False
) -> list[list[object]]:
    """Table 5 as spreadsheet rows: a header, then one row per study (consensus answers)."""
    table = quality_table5(review=review, sort=sort, descending=descending)
    rows: list[list[object]] = [
        ["Study", "Year", "DOI", *(c.code for c in table["criteria"]), "Total", "Assessors"]
    ]
    for row in table["rows"]:
        rows.append(
            [
                spreadsheet_text(row.study.title),
                row.study.year or "",
                spreadsheet_text(row.study.doi),
                *(_score(c.consensus.answer if c.consensus else None) for c in row.cells),
                _score(row.total),
                "; ".join(a.get_username() for a in row.assessors),
            ]
        )
    return rows
