"""The domain model, one module per workflow area (see DESIGN.md)."""

from .audit import AuditEvent
from .quality import (
    ExtractionField,
    ExtractionValue,
    QualityAnswer,
    QualityConsensus,
)
from .ranking import RankingRun, RankingSettings
from .records import DuplicateCandidate, ImportBatch, Record, Study
from .reports import FunnelSnapshot
from .reviews import (
    Criterion,
    Membership,
    QualityCriterion,
    ResearchQuestion,
    Review,
    SearchRun,
    SearchString,
    Source,
    Stage,
)
from .screening import Decision, FullText, Resolution

__all__ = [
    "AuditEvent",
    "Criterion",
    "Decision",
    "DuplicateCandidate",
    "ExtractionField",
    "ExtractionValue",
    "FullText",
    "FunnelSnapshot",
    "ImportBatch",
    "Membership",
    "QualityAnswer",
    "QualityConsensus",
    "QualityCriterion",
    "RankingRun",
    "RankingSettings",
    "Record",
    "ResearchQuestion",
    "Resolution",
    "Review",
    "SearchRun",
    "SearchString",
    "Source",
    "Stage",
    "Study",
]
