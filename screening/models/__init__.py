"""The domain model, one module per workflow area (see DESIGN.md).

A foreign key whose column starts a composite index or unique constraint of its model has
`db_index=False`: that index serves its lookups, and each index costs every write of the
table (tests/test_schema_indexes.py).
"""

from .audit import AuditEvent
from .dedup import StudyMerge
from .invitations import Invitation
from .notes import StudyNote, StudyTag, Tag
from .prisma_s import PrismaSAnswers
from .quality import (
    ExtractionAssignment,
    ExtractionField,
    ExtractionValue,
    QualityAnswer,
    QualityAssignment,
    QualityConsensus,
)
from .ranking import AuditSample, RankingRun, RankingSettings, StageStop, StudyPriority
from .records import DuplicateCandidate, ImportBatch, Record, Study
from .reports import FunnelSchedule, FunnelSnapshot
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
from .rounds import SearchRound
from .screening import Adjudicator, Decision, FullText, Resolution, ScreeningClaim
from .tokens import ApiToken

__all__ = [
    "AuditSample",
    "Adjudicator",
    "ApiToken",
    "ScreeningClaim",
    "AuditEvent",
    "Criterion",
    "Decision",
    "DuplicateCandidate",
    "ExtractionAssignment",
    "ExtractionField",
    "ExtractionValue",
    "FullText",
    "FunnelSchedule",
    "FunnelSnapshot",
    "ImportBatch",
    "Invitation",
    "Membership",
    "PrismaSAnswers",
    "QualityAnswer",
    "QualityAssignment",
    "QualityConsensus",
    "QualityCriterion",
    "RankingRun",
    "RankingSettings",
    "StageStop",
    "Record",
    "ResearchQuestion",
    "Resolution",
    "Review",
    "SearchRound",
    "SearchRun",
    "SearchString",
    "Source",
    "Stage",
    "Study",
    "StudyMerge",
    "StudyNote",
    "StudyPriority",
    "StudyTag",
    "Tag",
]
