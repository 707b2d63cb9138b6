"""Duplicate detection for bibliographic records (pure Python, dataclasses in and out).

The pipeline, each step chosen so that cost grows close to linearly with the number of records:

1. Normalise every record once (titles, DOIs, first-author surname, pages, venue).
2. Blocking: only pairs that share a block are compared. Blocks are the DOI, the PMID, a
   sorted neighbourhood on the title (and on the reversed title, so that a typo in the first
   words still lands near its twin), first author + first page and year + volume + first page
   (which find records whose title is missing or garbled). Large blocks are walked with a
   window instead of all pairs.
3. Scoring: field evidence is added up, Fellegi-Sunter style. Agreement on a rare, precise
   field (a DOI, a long title, volume + pages) weighs more than agreement on a common one (a
   year); disagreement on a field that should not vary between exports of one paper (year by
   more than one, first page, DOI) counts against. Each pair keeps a human reason.
4. Identifier traps: a DOI carried by many records with different titles (a conference
   supplement) is not treated as identifying; same DOI with a very different title is not a
   duplicate; an erratum, retraction, comment or reply never merges with the article it
   concerns; generic titles ("Editorial", "Reply") carry almost no weight; a missing year or
   author is neutral, never a disagreement.
   Place traps: two places in one venue (another volume, non-overlapping pages, another issue
   of one volume) are two items whatever the titles, except a meeting abstract and its paper;
   so are two proceedings volumes; a recurring column or front matter ("Editor's Comments",
   Scopus's "Conference Review") with any bibliographic difference is another item and is not
   even queued; one title in two venues in two years goes to a human.
5. Grouping: automatic pairs are joined in descending score order; a join is refused when the
   two groups contain records that cannot be the same paper (different DOIs, years more than
   one apart, unrelated titles, two places in one venue, different existing studies, a pair a
   human said differ), so a
   chain of near-matches cannot glue unrelated records together. Refused joins and grey-zone
   pairs become candidates for a human, best pair per pair of groups.

Records that already belong to a group (an existing study) are compared only with records
that do not: an incremental run re-examines nothing that was settled before.
"""

import re
import sys
from bisect import bisect_left
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice
from operator import attrgetter
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cpdist

from .forked import forked_map, spans
from .normalise import (
    fold,
    normalise_doi,
    normalise_pmid,
    number_key,
    page_key,
    surname,
    title_key,
    venue_tokens,
    venues_compatible,
)

# Journal names repeat across a review's records: compare each pair of spellings once.
_venues_compatible = lru_cache(maxsize=1 << 16)(venues_compatible)

AUTO_THRESHOLD = 9.5
CANDIDATE_THRESHOLD = 5.0
# A DOI carried by more records than this, with differing titles, is a shared (supplement or
# proceedings) DOI and identifies nothing.
SHARED_DOI_MIN = 3
WINDOW = 6
BLOCK_ALL_PAIRS_MAX = 12
BLOCK_WINDOW = 4
# Pairs asked of `_worth_scoring` at once: large enough for its C++ batches to pay, small
# enough to hold (a few MB).
PAIRS_PER_BATCH = 50_000
MAX_TITLES_PER_GROUP = 4
MAX_PLACES_CHECKED = 12

# A record id (the app) or a label (tests, benchmarks): hashable and orderable.
Key = int | str


@dataclass(frozen=True, slots=True)
class DedupRecord:
    """One record as duplicate detection sees it. `group` is the existing study, if any."""

    key: Key
    title: str = ""
    authors: tuple[str, ...] = ()
    year: int | None = None
    venue: str = ""
    volume: str = ""
    issue: str = ""
    pages: str = ""
    doi: str = ""
    pmid: str = ""
    publication_type: str = ""
    group: Key | None = None


@dataclass(frozen=True, slots=True)
class ScoredPair:
    a: Key
    b: Key
    score: float
    reason: str


@dataclass
class DedupResult:
    """`clusters` partitions every input key; `merges` are the automatic links applied;
    `candidates` are grey-zone pairs (one per pair of clusters) for a human to decide."""

    clusters: list[list[Key]]
    merges: list[ScoredPair] = field(default_factory=list)
    candidates: list[ScoredPair] = field(default_factory=list)
    pairs_compared: int = 0


# Titles that name a kind of item rather than a paper: equal titles prove nothing.
_GENERIC_SET = frozenset(
    (
        "editorial",
        "editorials",
        "reply",
        "in reply",
        "authors reply",
        "author reply",
        "the authors reply",
        "author s reply",
        "response",
        "authors response",
        "letter",
        "letters",
        "letter to the editor",
        "letters to the editor",
        "correspondence",
        "comment",
        "comments",
        "commentary",
        "erratum",
        "errata",
        "correction",
        "corrections",
        "corrigendum",
        "retraction",
        "retraction notice",
        "introduction",
        "preface",
        "foreword",
        "index",
        "abstracts",
        "abstract",
        "news",
        "book review",
        "book reviews",
        "announcement",
        "announcements",
        "obituary",
        "in memoriam",
        "proceedings",
        "conference proceedings",
        "poster session",
        "posters",
        "oral presentations",
        "contents",
        "table of contents",
        "front matter",
        "back matter",
        "cover",
        "editors note",
        "editor s note",
        "acknowledgement",
        "acknowledgements",
        "acknowledgment",
        "reviewers",
        "errata and corrections",
        "untitled",
        "no title",
        "no title available",
        "title not available",
        "highlights",
        "in this issue",
        "this issue",
        "case report",
        "case reports",
        "discussion",
        "summary",
        "guest editorial",
        "editorial comment",
        "invited commentary",
        "letter from the editor",
    )
)

# Words that mark a notice about another paper; such a notice is never the paper itself.
_NOTICE_PREFIXES = (
    ("erratum", "erratum"),
    ("errata", "erratum"),
    ("correction", "erratum"),
    ("corrigendum", "erratum"),
    ("retraction", "retraction"),
    ("retracted", "retraction"),
    ("expression of concern", "retraction"),
    ("comment on", "comment"),
    ("comments on", "comment"),
    ("commentary on", "comment"),
    ("reply to", "reply"),
    ("response to", "reply"),
    ("in reply", "reply"),
    ("authors reply", "reply"),
    ("author s reply", "reply"),
    ("the authors reply", "reply"),
)
# MEDLINE appends notes about related items to the article's own title; they are not a notice.
_MEDLINE_NOTE_RE = re.compile(
    r"\s*\[(?:erratum|comment|retraction|retracted|corrected|update|summary for patients)"
    r"[^\]]*(?:\]|$)",
    re.IGNORECASE,
)
_CORRECTION_SUFFIX_RE = re.compile(
    r"\s*\((?:vol\.?\s*\d+[^)]*pg\.?\s*\d+[^)]*|[^()]{3,80}\(\d{4}\)\s*\d+\s*\(\d+[^)]*\))\)\s*\.?$",
    re.IGNORECASE,
)
_NOTICE_PREFIX_RE = re.compile(
    r"^\s*(?:erratum|errata|correction|corrigendum|retraction|retracted|notice of retraction)"
    r"\s*(?:to|for|of|notice)?\s*[:.\-]\s*",
    re.IGNORECASE,
)
_NOTICE_INITIALS = frozenset("ecraitn")
_NOTICE_TYPES = {
    "erratum": "erratum",
    "correction": "erratum",
    "retraction": "retraction",
    "retracted": "retraction",
    "comment": "comment",
}


def notice_kind(title: str, publication_type: str = "", *, folded: str | None = None) -> str:
    """ "erratum", "retraction", "comment", "reply" or "" for a paper itself.

    `title` is the raw title: the citation-shaped suffixes by which Web of Science ("(vol 360,
    pg 542, 2009)") and Embase ("(New Engl J Med (2009) 360 (542-544))") mark a correction are
    read before folding removes them. `folded`: `fold(_notice_text(title))`, if the caller has
    it.
    """
    if title.rstrip(" .").endswith(")") and _CORRECTION_SUFFIX_RE.search(title):
        return "erratum"
    if folded is None:
        folded = fold(_notice_text(title))
    if folded[:1] in _NOTICE_INITIALS:
        for prefix, kind in _NOTICE_PREFIXES:
            if folded.startswith(prefix):
                return kind
    if folded.endswith(" reply"):
        return "reply"
    if publication_type:
        ptype = fold(publication_type)
        for word, kind in _NOTICE_TYPES.items():
            if word in ptype:
                return kind
    return ""


def _notice_text(title: str) -> str:
    """The title without MEDLINE's notes, as `notice_kind` reads it."""
    return _MEDLINE_NOTE_RE.sub("", title) if "[" in title else title


def strip_notes(title: str) -> str:
    """The title without MEDLINE's "[Erratum appears in ...]" notes and correction suffixes."""
    # Each pattern is tried only where it can match: these run once per record.
    if "[" in title:
        title = _MEDLINE_NOTE_RE.sub("", title)
    if title.rstrip(" .").endswith(")"):
        title = _CORRECTION_SUFFIX_RE.sub("", title)
    if title.lstrip()[:1].lower() in _NOTICE_INITIALS:
        title = _NOTICE_PREFIX_RE.sub("", title)
    return title


def title_is_informative(title: str) -> bool:
    """False for generic titles and titles too short to identify a paper."""
    if not title or title in _GENERIC_SET:
        return False
    words = title.split()
    return len(words) >= 4 or len(title) >= 30


# Recurring items of a journal or a proceedings series: one title for a new item in every issue
# or volume ("Editor's Comments" in each issue of MIS Quarterly, Scopus's "Conference Review"
# record for each volume of LNCS). Any bibliographic difference makes two of them two items.
_SERIES_PHRASES = (
    "editor s comments",
    "editors comments",
    "editor s comment",
    "editorial",
    "editor s note",
    "editors note",
    "from the editor",
    "letter from the editor",
    "conference review",
    "preface",
    "foreword",
    "front matter",
    "frontmatter",
    "back matter",
    "issue information",
    "table of contents",
    "in this issue",
    "masthead",
    "editorial board",
    "call for papers",
    "reviewers",
    "message from the",
    "welcome message",
    "organizing committee",
    "program committee",
)
_SERIES_RE = re.compile("|".join(re.escape(phrase) for phrase in _SERIES_PHRASES))
_SERIES_TYPES = ("conference review", "editorial", "front matter", "frontmatter")
_PROCEEDINGS_WORDS = ("proceedings", "conference", "lecture notes", "symposium", "workshop")


def is_series_item(title: str, publication_type: str = "") -> bool:
    """True for a recurring column or front matter (`title` folded): the title alone cannot
    tell one issue's item from the next one's."""
    if title in _GENERIC_SET:
        return True
    if _SERIES_RE.search(title):
        return True
    words = title.split()
    if words and words[-1] == "index" and len(words) <= 3:
        return True  # "Index", "Author index", "Subject index"
    ptype = publication_type.lower()
    return bool(ptype) and any(kind in ptype for kind in _SERIES_TYPES)


def is_proceedings(venue: str, publication_type: str = "") -> bool:
    """A proceedings volume (or a paper in one): its volume number tells the volumes apart
    even where one export has lost the series' name."""
    text = f"{venue} {publication_type}".lower()
    return any(word in text for word in _PROCEEDINGS_WORDS)


def _page_number(page: str) -> int:
    return int(page) if page.isdigit() else -1


_SUPPLEMENT_PAGE_RE = re.compile(r"\s*[sS]\d")


@lru_cache(maxsize=1 << 16)
def _title_features(title: str, publication_type: str) -> tuple[str, str, bool, str, bool, bool]:
    """What a title tells, computed once per distinct title: the exports of one paper share
    it. (notice kind, comparable title, translated, compact, informative, recurring item)"""
    if title:
        text = _notice_text(title)
        folded = fold(text)
        notice = notice_kind(title, publication_type, folded=folded)
        without_notes = strip_notes(title)
        # `title_key` folds the title without its notes and annotations: for most titles (none
        # of either, no bracket at all) that is what was folded for the notice. Folding is
        # most of a record's normalisation; twice per title it was 10 s of a million records.
        plain = without_notes == text and "(" not in text and "[" not in text
        key = folded if plain else title_key(without_notes)
    else:
        notice = key = ""
    # MEDLINE brackets the English translation of a non-English title; other libraries
    # translate it otherwise or keep the original.
    raw_title = title.strip().rstrip(".")
    translated = raw_title[:1] == "[" and raw_title[-1:] == "]"
    return (
        notice,
        key,
        translated,
        key.replace(" ", ""),
        title_is_informative(key),
        is_series_item(key, publication_type),
    )


_YEARS: dict[int, int] = {}


class _Blockable(Protocol):
    """What blocking and `_worth_scoring` read of a record: a `_Feat` or a `ScanFeatures`."""

    @property
    def key(self) -> Key: ...
    @property
    def group(self) -> Key | None: ...
    @property
    def title(self) -> str: ...
    @property
    def compact(self) -> str: ...
    @property
    def first(self) -> str: ...
    @property
    def year(self) -> int | None: ...
    @property
    def volume(self) -> str: ...
    @property
    def page_first(self) -> str: ...
    @property
    def doi(self) -> str: ...
    @property
    def pmid(self) -> str: ...


class _Feat:
    __slots__ = (
        "key",
        "title",
        "compact",
        "informative",
        "notice",
        "year",
        "first",
        "surnames",
        "venue",
        "volume",
        "issue",
        "series",
        "proceedings",
        "supplement",
        "translated",
        "page_first",
        "page_last",
        "page_lo",
        "page_hi",
        "doi",
        "pmid",
        "group",
    )

    def __init__(self, rec: DedupRecord, known: "ScanFeatures | None" = None):
        """`known`: the record's scan features, whose title part is taken as it is."""
        self.key = rec.key
        if known is None:
            (
                self.notice,
                self.title,
                self.translated,
                self.compact,
                self.informative,
                self.series,
            ) = _title_features(rec.title, rec.publication_type)
        else:
            self.notice = known.notice
            self.title = known.title
            self.compact = known.title.replace(" ", "")
            flags = known.title_flags
            self.translated = bool(flags & 1)
            self.informative = bool(flags & 2)
            self.series = bool(flags & 4)
        # Years repeat: one int object each (a year above 256 is a new int per row).
        self.year = _YEARS.setdefault(rec.year, rec.year) if rec.year else None
        names = [s for s in (surname(a) for a in rec.authors[:6]) if s]
        # Surnames, volumes, issues and page numbers repeat across records: interned, one
        # string each (a new string per row otherwise, ~40 bytes each).
        self.first = sys.intern(names[0]) if names else ""
        # The distinct surnames in one order: a tuple is a third of a frozenset's memory, and
        # signatures compare them as sets still.
        self.surnames = tuple(sorted(set(names)))
        self.venue = venue_tokens(rec.venue)
        self.volume = sys.intern(number_key(rec.volume))
        self.issue = sys.intern(number_key(rec.issue))
        self.proceedings = is_proceedings(rec.venue, rec.publication_type)
        page_first, page_last = page_key(rec.pages)
        self.page_first, self.page_last = sys.intern(page_first), sys.intern(page_last)
        # The page range as numbers (-1: none), for overlap tests.
        self.page_lo = _page_number(self.page_first)
        self.page_hi = max(self.page_lo, _page_number(self.page_last))
        self.supplement = "suppl" in f"{rec.volume} {rec.issue}".lower() or bool(
            _SUPPLEMENT_PAGE_RE.match(rec.pages)
        )
        self.doi = normalise_doi(rec.doi)
        self.pmid = normalise_pmid(rec.pmid)
        self.group = rec.group

    @classmethod
    def from_values(cls, values: tuple[Any, ...]) -> "_Feat":
        """The features whose slots hold `values`, in the order of `__slots__`."""
        self = cls.__new__(cls)
        for name, value in zip(cls.__slots__, values, strict=True):
            setattr(self, name, value)
        return self

    def signature(self) -> tuple[Hashable, ...]:
        return (
            self.title,
            self.year,
            self.first,
            self.surnames,
            self.venue,
            self.volume,
            self.issue,
            self.page_first,
            self.page_last,
            self.doi,
            self.pmid,
            self.notice,
        )


@lru_cache(maxsize=1 << 16)
def title_similarity(a: str, b: str) -> float:
    """0..1; word order and a missing subtitle are tolerated, other differences are not."""
    if a == b:
        return 1.0
    score = fuzz.ratio(a, b, score_cutoff=60)
    if score < 92:
        score = max(score, fuzz.token_sort_ratio(a, b, score_cutoff=60))
    if score < 90 and _subtitle_dropped(a, b):
        score = 90
    return score / 100.0


# The shortest title (in characters) that may be another's with its subtitle dropped.
SUBTITLE_DROPPED_MIN = 20


def _subtitle_dropped(a: str, b: str) -> bool:
    """One export drops the subtitle: the shorter title is the start of the longer one, or
    it keeps only the part after the colon. (Asked of most pairs the scans meet: the tests
    that fail fast come first, and no string is built.)"""
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    n = len(short)
    return (
        n >= SUBTITLE_DROPPED_MIN
        and len(long_) > n
        and (
            (long_.startswith(short) and long_[n] == " ")
            or (long_.endswith(short) and long_[-n - 1] == " ")
        )
        and short.count(" ") >= 2
    )


# The title similarity below which a pair is not worth scoring (`_worth_scoring`), on
# rapidfuzz's 0-100 scale.
TITLES_NEAR = 70


def titles_near(a: Sequence[str], b: Sequence[str]) -> list[bool]:
    """For each pair (a[k], b[k]): title_similarity >= TITLES_NEAR / 100, without its score.

    The scans and the scoring filter millions of pairs this way, and most are not near: by
    rapidfuzz's pairwise `cpdist`, in C++ on every core with the GIL released, each scorer's
    cutoff letting it stop early, where one call per pair was half of a run's scoring time.
    Exactly `title_similarity`'s rule: its ratio, else its word-order ratio, else the
    dropped subtitle. The titles are folded (`fold`: words separated by single spaces).

    Neither ratio is asked of titles whose lengths alone keep it below TITLES_NEAR: their
    distance is at least the difference of their lengths, and the word-order ratio compares
    strings of the same lengths (the words sorted, still one space apart). A fifth of the
    pairs the scans meet at a million records."""
    if not a:
        return []
    count = len(a)
    lengths_a = np.fromiter(map(len, a), np.int64, count)
    lengths_b = np.fromiter(map(len, b), np.int64, count)
    comparable = np.flatnonzero(
        100 * np.abs(lengths_a - lengths_b) <= (100 - TITLES_NEAR) * (lengths_a + lengths_b)
    )
    near = np.zeros(count, dtype=bool)
    asked = comparable.tolist()
    near[comparable] = (
        cpdist(
            [a[k] for k in asked],
            [b[k] for k in asked],
            scorer=fuzz.ratio,
            score_cutoff=TITLES_NEAR,
            workers=-1,
        )
        > 0
    )
    worded = comparable[~near[comparable]]
    if len(worded):
        asked = worded.tolist()
        near[worded] = (
            cpdist(
                [a[k] for k in asked],
                [b[k] for k in asked],
                scorer=fuzz.token_sort_ratio,
                score_cutoff=TITLES_NEAR,
                workers=-1,
            )
            > 0
        )
    # A dropped subtitle leaves the shorter title (n characters) at the start or the end of
    # the longer (m): their ratio is 200 n / (n + m), below TITLES_NEAR only when m is much
    # the longer. The other pairs a dropped subtitle would make near are near already; most
    # pairs are not asked (a Python call each was a tenth of the scans' time).
    shorter = np.minimum(lengths_a, lengths_b)
    longer = np.maximum(lengths_a, lengths_b)
    subtitle_possible = (shorter >= SUBTITLE_DROPPED_MIN) & (
        (200 - TITLES_NEAR) * shorter <= TITLES_NEAR * longer
    )
    for k in np.flatnonzero(~near & subtitle_possible).tolist():
        if _subtitle_dropped(a[k], b[k]):
            near[k] = True
    return near.tolist()


def _names_similar(a: str, b: str) -> bool:
    if a == b:
        return True
    if a.startswith(b) or b.startswith(a):
        return min(len(a), len(b)) >= 4
    # "Il Cheong" against "Cheong": a particle or given name read as part of the surname.
    if " " in a or " " in b:
        return a.split()[-1] == b.split()[-1] and len(a.split()[-1]) >= 4
    return Levenshtein.distance(a, b, score_cutoff=2) <= (1 if min(len(a), len(b)) < 7 else 2)


_TITLE_STOP = frozenset(
    "a an the of and in on for to with by at from or as is are vs versus".split()
)


def _close_words(a: str, b: str) -> bool:
    if a.isdigit() or b.isdigit():
        return False  # "part 1" and "part 2" are two papers, not a typo
    if a.startswith(b) or b.startswith(a):
        return min(len(a), len(b)) >= 3
    limit = 1 if min(len(a), len(b)) < 6 else 2
    return Levenshtein.distance(a, b, score_cutoff=limit) <= limit


_CORRECTIONS = frozenset({"", "erratum", "retraction"})


def _notices_compatible(a: str, b: str) -> bool:
    """Errata and retraction notices may join their article; comments and replies never."""
    return a == b or (a in _CORRECTIONS and b in _CORRECTIONS)


def _pages_overlap(a: _Feat, b: _Feat) -> bool:
    """True when the page ranges share a page (or cannot be compared as numbers)."""
    if a.page_lo < 0 or b.page_lo < 0:
        return a.page_first == b.page_first
    return max(a.page_lo, b.page_lo) <= min(a.page_hi, b.page_hi)


def _same_locator(a: _Feat, b: _Feat) -> bool:
    """Same year, volume and first page: one place in one journal."""
    return bool(
        a.year
        and a.year == b.year
        and a.volume
        and a.volume == b.volume
        and a.page_first
        and a.page_first == b.page_first
    )


def _abstract(f: _Feat) -> bool:
    """A meeting abstract's shape: one page, or a supplement page ("S33")."""
    return (not f.page_last or f.page_last == f.page_first) or f.supplement


def _abstract_and_paper(a: _Feat, b: _Feat, title_score: float) -> bool:
    """Same title by the same first author in one venue and year, one item an abstract (one
    page or a supplement) that precedes the other: the abstract and the paper of one study.
    A single page after a longer item is an erratum's shape, and a recurring column never
    qualifies."""
    if a.series or b.series or title_score < 0.985 or not (a.year and a.year == b.year):
        return False
    if not (a.first and b.first and _names_similar(a.first, b.first)):
        return False
    if a.volume and b.volume and a.volume != b.volume:
        earlier = a if int(a.volume) < int(b.volume) else b
    else:
        if a.page_lo < 0 or b.page_lo < 0:
            return True
        earlier = a if a.page_lo < b.page_lo else b
    return _abstract(earlier)


PAGES_DIFFER = "different pages in one venue"
# Libraries store record or accession numbers in the issue field (the respiratory benchmark's
# EndNote library does, "Chest 138(1687)"); above this an "issue" is more often one of those, or
# a weekly journal's running number, than an issue within a volume.
ISSUE_MAX = 99


def _issues_differ(a: _Feat, b: _Feat) -> bool:
    """Two issue numbers of one volume that place two items in two issues."""
    if not (a.issue and b.issue) or a.issue == b.issue:
        return False
    return int(a.issue) <= ISSUE_MAX and int(b.issue) <= ISSUE_MAX


def locator_conflict(a: _Feat, b: _Feat, venue_ok: bool | None) -> str:
    """Why two records sit at two places of one venue (two items, whatever their titles), or "".

    Within one venue: a different volume, page ranges that do not overlap (a one-digit slip in
    a long page number aside) or, where the pages cannot tell, a different issue of one volume.
    Proceedings volumes are told apart by their number even when one export lost the series'
    name.
    """
    volume_differ = bool(a.volume and b.volume and a.volume != b.volume)
    if volume_differ and venue_ok is None and (a.proceedings or b.proceedings):
        return "different proceedings volumes"
    if not venue_ok:
        return ""
    if volume_differ:
        return "different volume in one venue"
    pages_known = bool(a.page_first and b.page_first)
    if pages_known and not _pages_overlap(a, b):
        if not (a.volume and a.volume == b.volume and _pages_typo(a.page_first, b.page_first)):
            return PAGES_DIFFER
    elif not pages_known and _issues_differ(a, b) and a.volume and a.volume == b.volume:
        return "different issue in one venue"
    return ""


def series_difference(a: _Feat, b: _Feat, venue_ok: bool | None) -> str:
    """For a recurring column or front matter, the first bibliographic difference, or ""."""
    if not (a.series or b.series):
        return ""
    differences = (
        (a.year and b.year and a.year != b.year, "year"),
        (a.volume and b.volume and a.volume != b.volume, "volume"),
        (a.issue and b.issue and a.issue != b.issue, "issue"),
        (a.page_first and b.page_first and a.page_first != b.page_first, "pages"),
        (a.doi and b.doi and a.doi != b.doi, "DOI"),
        (venue_ok is False, "venue"),
    )
    for differs, name in differences:
        if differs:
            return f"recurring item ({a.title or b.title}) in another {name}"
    return ""


def _pages_typo(a: str, b: str) -> bool:
    """A one-character slip in a page number of at least three digits ("2297" for "2097")."""
    return (
        len(a) == len(b) >= 3
        and a.isdigit()
        and b.isdigit()
        and Levenshtein.distance(a, b, score_cutoff=1) <= 1
    )


def title_word_changes(a: str, b: str) -> tuple[list[str], bool]:
    """Words replaced between two titles that are not typos, and whether numbers differ.

    "pediatric" against "adult", "sensitive" against "resistant", "part 1" against "part 2"
    are different papers however close the characters are; "haemolytic" against "hemolytic"
    or a dropped article are not.
    """
    wa, wb = set(a.split()) - _TITLE_STOP, set(b.split()) - _TITLE_STOP
    only_a, only_b = wa - wb, wb - wa
    if not only_a or not only_b:
        return [], False
    numbers_a = {w for w in only_a if w.isdigit()}
    numbers_b = {w for w in only_b if w.isdigit()}
    lone_a = [w for w in only_a if not any(_close_words(w, v) for v in only_b)]
    lone_b = [w for w in only_b if not any(_close_words(w, v) for v in only_a)]
    if not lone_a or not lone_b:
        return [], bool(numbers_a and numbers_b)
    return sorted(lone_a)[:2] + sorted(lone_b)[:2], bool(numbers_a and numbers_b)


class _Evidence:
    """The running sum of a pair's field evidence, its human reason and any hard conflict."""

    __slots__ = ("score", "parts", "hard")

    def __init__(self) -> None:
        self.score = 0.0
        self.parts: list[str] = []
        self.hard = False

    def add(self, weight: float, part: str = "") -> None:
        self.score += weight
        if part:
            self.parts.append(part)

    def conflict(self, part: str) -> None:
        """Evidence that forbids an automatic merge (a human may still decide)."""
        self.hard = True
        self.parts.append(part)


class _Refused(Exception):
    """A pair that is two items whatever else agrees: no merge, not even a queue entry."""


def score_pair(
    a: _Feat, b: _Feat, shared_dois: frozenset[str] = frozenset()
) -> tuple[float, str, bool]:
    """(score, reason, hard_conflict). A hard conflict can never merge automatically."""
    ev = _Evidence()
    correction = False
    if a.notice != b.notice:
        if _notices_compatible(a.notice, b.notice):
            # An erratum or retraction notice belongs with the article it corrects: it is not
            # another study, and it sits at another place in the journal by nature. Attached by
            # a human, never automatically: the labels differ.
            correction = True
            ev.conflict(f"{a.notice or b.notice} of this article?")
        else:
            kinds = sorted(k or "article" for k in (a.notice, b.notice))
            ev.conflict(f"{kinds[0]} vs {kinds[1]}")
    venue_ok = _venues_compatible(a.venue, b.venue) if a.venue and b.venue else None
    try:
        if not correction and (different := series_difference(a, b, venue_ok)):
            raise _Refused(different)
        id_match = _identifier_evidence(a, b, shared_dois, ev)
        title_score = _title_evidence(a, b, id_match, ev)
    except _Refused as refused:
        return -99.0, str(refused), True
    _people_evidence(a, b, ev)
    _place_evidence(a, b, venue_ok, title_score, correction, ev)
    return ev.score, " + ".join(ev.parts), ev.hard


def _identifier_evidence(a: _Feat, b: _Feat, shared_dois: frozenset[str], ev: _Evidence) -> bool:
    """DOI and PMID; True when one of them is the same."""
    id_match = False
    if a.doi and b.doi and a.doi not in shared_dois and b.doi not in shared_dois:
        if a.doi == b.doi:
            ev.add(10.0, "same DOI")
            id_match = True
        else:
            ev.add(-5.0)
            ev.conflict("different DOI")
    if a.pmid and b.pmid:
        if a.pmid == b.pmid:
            ev.add(10.0, "same PMID")
            id_match = True
        else:
            ev.add(-6.0)
            ev.conflict("different PMID")
    return id_match


def _title_evidence(a: _Feat, b: _Feat, id_match: bool, ev: _Evidence) -> float:
    """The titles' similarity (0 when one is missing), weighed by how much a title says."""
    if not (a.title and b.title):
        if not id_match:
            # Without a title nothing tells a reader it is the same paper: a human checks.
            ev.conflict("no title")
        return 0.0
    ts = title_similarity(a.title, b.title)
    if id_match and ts < 0.7:
        # One DOI on different papers: a supplement's or a proceedings volume's DOI.
        raise _Refused(f"same identifier but titles differ ({ts:.2f})")
    informative = a.informative and b.informative
    # Word changes only matter where the title would count for the pair.
    changed, numbers_differ = (
        title_word_changes(a.title, b.title) if 0.85 <= ts < 1.0 else ([], False)
    )
    # A short title ("Haemolytic uraemic syndrome") identifies less than a long one, a
    # generic one ("Editorial") almost nothing.
    generic = a.title in _GENERIC_SET or b.title in _GENERIC_SET
    hard = False
    if ts >= 0.97:
        weight = 8.0 if informative else (2.5 if generic else 5.0)
    elif ts >= 0.93:
        weight = 6.5 if informative else (1.0 if generic else 3.0)
    elif ts >= 0.85:
        weight = 3.5 if informative else 0.0
    elif ts >= 0.7:
        weight = 0.0
    elif (a.translated or b.translated) and _same_locator(a, b):
        # Two translations of one title: the article's place in its journal decides.
        weight = 0.0
        ev.parts.append("translated title")
    else:
        weight = -5.0
        hard = True
    label = "title" if informative else ("generic title" if generic else "short title")
    ev.parts.append(f"{label} {ts:.2f}")
    if changed:
        weight = min(weight, 3.5)
        ev.parts.append("words differ: " + "/".join(changed))
    ev.hard = ev.hard or hard or numbers_differ
    ev.add(weight)
    return ts


def _people_evidence(a: _Feat, b: _Feat, ev: _Evidence) -> None:
    """Year and first author."""
    if a.year and b.year:
        gap = abs(a.year - b.year)
        if gap == 0:
            ev.add(1.5, "same year")
        elif gap == 1:
            ev.add(-0.5, "year ±1")
        else:
            ev.add(-4.0)
            ev.conflict(f"years {min(a.year, b.year)}/{max(a.year, b.year)}")
    if a.first and b.first:
        if a.first == b.first:
            ev.add(2.0, "same first author")
        elif _names_similar(a.first, b.first):
            ev.add(1.5, "similar first author")
        elif sum(name in b.surnames for name in a.surnames) >= 2:
            ev.add(0.5, "shared authors")
        else:
            ev.add(-2.5, "different first author")


def _place_evidence(
    a: _Feat, b: _Feat, venue_ok: bool | None, title_score: float, correction: bool, ev: _Evidence
) -> None:
    """Venue, volume and pages: where each record says the paper sits."""
    # Only the first page is compared: last pages vary with "; discussion 748-9" and typos.
    pages_same = bool(a.page_first and a.page_first == b.page_first)
    pages_differ = bool(a.page_first and b.page_first and a.page_first != b.page_first)
    volume_same = bool(a.volume and b.volume and a.volume == b.volume)
    volume_differ = bool(a.volume and b.volume and a.volume != b.volume)
    if correction:
        pages_same = pages_differ = volume_same = volume_differ = False
    elif (conflict := locator_conflict(a, b, venue_ok)) == PAGES_DIFFER and _abstract_and_paper(
        a, b, title_score
    ):
        # The benchmarks' ground truth (and review practice) count a meeting abstract and the
        # paper it became, in one journal in one year, as one study.
        ev.parts.append("abstract and paper in one venue")
    elif conflict:
        # Two places in one venue are two items (an article and its erratum, one column in two
        # issues, two papers under one title), never two exports of one paper.
        ev.conflict(conflict)
    elif venue_ok is False and not (pages_same and volume_same) and (pages_differ or volume_differ):
        ev.conflict("different venues")
    if venue_ok is False and a.year and b.year and a.year != b.year:
        if not (pages_same and volume_same):
            # One title at two conferences in two years is two publications (a human may
            # decide); one volume and page range under two spellings of a journal is not.
            ev.conflict("different venues and years")
    if pages_differ and venue_ok and volume_same and _pages_typo(a.page_first, b.page_first):
        pages_differ = False
        pages_same = True
    if pages_same and volume_same:
        if (a.translated or b.translated) and title_score < 0.85:
            ev.add(2.0)  # the locator carries the evidence a translated title cannot
        ev.add(
            5.0 + (1.5 if venue_ok else 0.0),
            "same volume and pages" + (" and venue" if venue_ok else ""),
        )
        return
    # Pages and volumes disagree between exports of one paper (supplement numbering, article
    # numbers, online-first issues): weak evidence against.
    if pages_same:
        ev.add(2.5, "same pages")
    elif pages_differ:
        ev.add(-1.5, "different pages")
    if volume_differ:
        ev.add(-1.0, "different volume")
    if venue_ok:
        ev.add(0.5, "same venue")
    elif venue_ok is False:
        ev.add(-0.5)


def _place(f: _Feat) -> tuple[Hashable, ...]:
    return (
        f.venue,
        f.volume,
        f.issue,
        f.page_first,
        f.page_last,
        f.year,
        f.doi,
        f.first,
        f.series,
        f.notice,
    )


# A group's DOIs, PMIDs or titles: a lone record's one value is the string itself.
_Values = str | tuple[str, ...]


def _values(values: "_Values | list[str]") -> Sequence[str]:
    return (values,) if isinstance(values, str) else values


def _disjoint(a: _Values, b: _Values) -> bool:
    return set(_values(a)).isdisjoint(_values(b))


def _merged(a: _Values, b: _Values) -> _Values:
    """The values of two groups, each once, in order (a tuple unless both are empty)."""
    merged = tuple(dict.fromkeys((*_values(a), *_values(b))))
    return merged


class _Groups:
    """Union-find whose roots carry what the chaining guard needs."""

    def __init__(self, feats: Sequence[_Feat], shared_dois: frozenset[str]) -> None:
        n = len(feats)
        self.parent = list(range(n))
        self.size = [1] * n
        # Tuples, not sets: a set per record was a fifth of a run's memory. A lone record's
        # DOI, PMID and title are the string itself (`_values` reads both), not a tuple.
        self.dois: list[_Values] = [
            f.doi if f.doi and f.doi not in shared_dois else () for f in feats
        ]
        self.pmids: list[_Values] = [f.pmid or () for f in feats]
        # A lone record's year range, one tuple per year.
        ranges: dict[int, tuple[int, int]] = {}
        self.years = [
            ranges.setdefault(f.year, (f.year, f.year)) if f.year else None for f in feats
        ]
        # A group's kind is that of its article once an article has joined it.
        self.notice = [f.notice for f in feats]
        self.group = [f.group for f in feats]
        # A translated title says little about its group (see score_pair).
        # A lone record's titles are a tuple, its members and places None (itself): a list
        # per record for each was a fifth of a 100,000-record pass's peak. A list is made
        # when a group first grows (`union`).
        self.titles: list[_Values | list[str]] = [
            f.title if f.informative and not f.translated else () for f in feats
        ]
        self.members: list[list[int] | tuple[()] | None] = [None] * n
        self.feats = feats
        # One record per distinct place (venue, volume, issue, pages...) in each group: what
        # the chaining guard compares, whatever the number of copies of one export.
        self.places: list[list[int] | tuple[()] | None] = [None] * n
        # The places' keys, built when a group first grows.
        self.place_keys: list[set[tuple[Hashable, ...]] | None] = [None] * n

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def conflict(self, ra: int, rb: int, cannot: dict[int, set[int]]) -> str:
        """Why groups ra and rb must not be joined, or ""."""
        if self.group[ra] is not None and self.group[rb] is not None:
            if self.group[ra] != self.group[rb]:
                return "records belong to two existing studies"
        if not _notices_compatible(self.notice[ra], self.notice[rb]):
            return "a comment or reply and the paper it answers"
        if self.dois[ra] and self.dois[rb] and _disjoint(self.dois[ra], self.dois[rb]):
            return "different DOIs in the two groups"
        if self.pmids[ra] and self.pmids[rb] and _disjoint(self.pmids[ra], self.pmids[rb]):
            return "different PMIDs in the two groups"
        ya, yb = self.years[ra], self.years[rb]
        if ya and yb and max(ya[1], yb[1]) - min(ya[0], yb[0]) > 1:
            return "years too far apart in the two groups"
        for ta in _values(self.titles[ra]):
            for tb in _values(self.titles[rb]):
                if title_similarity(ta, tb) < 0.8:
                    return "unrelated titles in the two groups"
        if why := self._members_apart(ra, rb):
            return why
        if cannot:
            small, other = (ra, rb) if self.size[ra] <= self.size[rb] else (rb, ra)
            other_members = set(self._members(other))
            for i in self._members(small):
                if cannot.get(i, set()) & other_members:
                    return "a reviewer said these differ"
        return ""

    def _members_apart(self, ra: int, rb: int) -> str:
        """A record of each group at two places of one venue (or two items of a recurring
        column): a record that lacks the telling field must not chain them together."""
        feats = self.feats
        for i in self._places(ra):
            a = feats[i]
            for j in self._places(rb):
                b = feats[j]
                if a.notice != b.notice:
                    continue  # an erratum sits elsewhere by nature
                venue_ok = _venues_compatible(a.venue, b.venue) if a.venue and b.venue else None
                why = series_difference(a, b, venue_ok) or locator_conflict(a, b, venue_ok)
                if why and not (
                    why == PAGES_DIFFER
                    and _abstract_and_paper(a, b, title_similarity(a.title, b.title))
                ):
                    return why
        return ""

    def union(self, ra: int, rb: int) -> None:
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        self.dois[ra] = _merged(self.dois[ra], self.dois[rb])
        self.pmids[ra] = _merged(self.pmids[ra], self.pmids[rb])
        ya, yb = self.years[ra], self.years[rb]
        if yb:
            self.years[ra] = (min(ya[0], yb[0]), max(ya[1], yb[1])) if ya else yb
        if self.group[ra] is None:
            self.group[ra] = self.group[rb]
        if self.notice[ra] in _CORRECTIONS and self.notice[rb] in _CORRECTIONS:
            self.notice[ra] = ""  # an article with its errata
        titles = self.titles[ra]
        if self.titles[rb] and not isinstance(titles, list):
            titles = self.titles[ra] = list(_values(titles))
        for t in _values(self.titles[rb]):
            if len(titles) >= MAX_TITLES_PER_GROUP:
                break
            if t not in titles:
                titles.append(t)  # type: ignore[union-attr]  # a list, made above
        members = self.members[ra]
        if not isinstance(members, list):  # None: a lone record (a root is never ())
            members = self.members[ra] = [ra]
        members.extend(self._members(rb))
        self.members[rb] = ()  # no longer a root: none (a shared empty tuple, no list)
        keys = self.place_keys[ra]
        places = self.places[ra]
        if not isinstance(places, list):
            places = self.places[ra] = [ra]
        if keys is None:
            keys = self.place_keys[ra] = {_place(self.feats[i]) for i in places}
        for j in self._places(rb):
            key = _place(self.feats[j])
            if key not in keys and len(places) < MAX_PLACES_CHECKED:
                keys.add(key)
                places.append(j)
        self.places[rb] = ()

    def _members(self, root: int) -> Sequence[int]:
        members = self.members[root]
        return [root] if members is None else members

    def _places(self, root: int) -> Sequence[int]:
        places = self.places[root]
        return [root] if places is None else places


def _window_pairs(order: list[int], window: int) -> Iterator[tuple[int, int]]:
    for pos, i in enumerate(order):
        for j in order[pos + 1 : pos + window]:
            yield (i, j) if i < j else (j, i)


def _block_pairs(
    blocks: dict[tuple[Hashable, ...], list[int]], feats: Sequence[_Feat]
) -> Iterator[tuple[int, int]]:
    for members in blocks.values():
        if len(members) < 2:
            continue
        if len(members) <= BLOCK_ALL_PAIRS_MAX:
            for x in range(len(members)):
                for y in range(x + 1, len(members)):
                    i, j = members[x], members[y]
                    yield (i, j) if i < j else (j, i)
        else:
            members.sort(key=lambda i: feats[i].compact)
            yield from _window_pairs(members, BLOCK_WINDOW)


def _block_keys(f: _Blockable) -> Iterator[tuple[Hashable, ...]]:
    """The blocks a record belongs to besides its title's neighbourhood."""
    if f.doi:
        yield ("doi", f.doi)
    if f.pmid:
        yield ("pmid", f.pmid)
    if f.page_first:
        if f.first:
            yield ("author-page", f.first, f.page_first)
        if f.volume:
            yield ("vol-page", f.year, f.volume, f.page_first)
    if f.first and f.year and f.title:
        # Same first author and year, titles sharing their first two words.
        yield ("author-year", f.first, f.year, f.title[:12])


def _title_runs(feats: Sequence[_Feat]) -> tuple[list[tuple[int, int]], list[int]]:
    """The pairs of records with identical titles (a chain through each run is enough,
    grouping closes it transitively), and one record per distinct title (its first)."""
    by_title: dict[str, list[int]] = {}
    for i, f in enumerate(feats):
        if f.compact:
            by_title.setdefault(f.compact, []).append(i)
    runs: list[tuple[int, int]] = []
    heads = []
    for members in by_title.values():
        heads.append(members[0])
        for x in range(1, len(members)):
            runs.append((members[x - 1], members[x]))
            if x > 1:
                runs.append((members[0], members[x]))
    return runs, heads


def _blocked_pairs(
    feats: Sequence[_Feat],
    heads: list[int],
    only_blocks: set[tuple[Hashable, ...]] | None = None,
) -> Iterator[tuple[int, int]]:
    """Index pairs worth scoring besides identical titles (blocking), smaller index first, a
    pair possibly more than once: the title neighbourhoods of the distinct titles `heads`, and
    the other blocks (only those in `only_blocks` when given)."""
    yield from _window_pairs(sorted(heads, key=lambda i: feats[i].compact), WINDOW)
    yield from _window_pairs(sorted(heads, key=lambda i: feats[i].compact[::-1]), WINDOW)
    blocks: dict[tuple[Hashable, ...], list[int]] = {}
    for i, f in enumerate(feats):
        for key in _block_keys(f):
            if only_blocks is None or key in only_blocks:
                blocks.setdefault(key, []).append(i)
    yield from _block_pairs(blocks, feats)


def candidate_pairs(
    feats: Sequence[_Feat], runs: set[tuple[int, int]] | None = None
) -> set[tuple[int, int]]:
    """Index pairs worth scoring (blocking); each pair once, smaller index first. The pairs
    of records with identical titles are also added to `runs` when given."""
    title_runs, heads = _title_runs(feats)
    if runs is not None:
        runs.update(title_runs)
    return {*title_runs, *_blocked_pairs(feats, heads)}


# A pair of indices (i < j) packed into one 64-bit integer for the large pair sets of a run;
# sorting the packed pairs sorts them as tuples.
_PAIR_SHIFT = 32
_PAIR_LOW = (1 << _PAIR_SHIFT) - 1
# Packed pairs, each once, in order (indices below 2**31).
_PackedPairs = NDArray[np.int64]


def _packed_pairs(pairs: Iterable[tuple[int, int]]) -> _PackedPairs:
    """The index pairs (i < j, possibly repeated) packed, each once, in order.

    A million records make tens of millions of pairs a run. As a set of Python ints and then
    a sorted list of them they took 74 bytes a pair (8 here), and hashing and sorting them was
    a quarter of the run's serial scoring time. Sorted by NumPy, not `np.unique` (it hashes
    in NumPy 2.4 and was ten times slower than a sort); forked scorers share the array's
    pages, which no reference count touches."""
    packed = np.fromiter((i << _PAIR_SHIFT | j for i, j in pairs), dtype=np.int64)
    packed.sort()
    if len(packed) < 2:
        return packed
    first = np.empty(len(packed), dtype=bool)
    first[0] = True
    np.not_equal(packed[1:], packed[:-1], out=first[1:])
    return packed[first]


def _without(pairs: _PackedPairs, taken: _PackedPairs) -> _PackedPairs:
    """The packed `pairs` not in `taken` (both as `_packed_pairs` makes them)."""
    if not len(taken) or not len(pairs):
        return pairs
    places = np.minimum(np.searchsorted(taken, pairs), len(taken) - 1)
    kept: _PackedPairs = pairs[taken[places] != pairs]
    return kept


def _shared_dois(feats: Sequence[_Feat]) -> frozenset[str]:
    titles_by_doi: dict[str, set[str]] = {}
    for f in feats:
        if f.doi:
            titles_by_doi.setdefault(f.doi, set()).add(f.compact[:40])
    return frozenset(
        doi
        for doi, titles in titles_by_doi.items()
        if len(titles) >= SHARED_DOI_MIN
        and max((1 - title_similarity(a, b) for a in titles for b in titles if a < b), default=0.0)
        > 0.3
    )


_Scored = tuple[float, int, int, str]
# What scoring a span of a phase's pairs finds: its automatic pairs best first, how many pairs
# it scored, its grey-zone pairs in order.
_PhaseScores = tuple[list[_Scored], int, list[_Scored]]
# A phase of fewer pairs is scored in this process: a fork and the answer's pickling cost
# more than they save.
FORKED_PAIRS_MIN = 200_000
SPANS_PER_PROCESS = 8


def deduplicate(
    records: Sequence[DedupRecord],
    *,
    cannot_link: Iterable[tuple[Key, Key]] = (),
    auto_threshold: float = AUTO_THRESHOLD,
    candidate_threshold: float = CANDIDATE_THRESHOLD,
    processes: int = 1,
) -> DedupResult:
    """Group records that describe the same paper; see the module docstring. `processes`:
    how many processes may score a large set of pairs (`forked_map`); the result is the same
    whatever their number."""
    return _deduplicate(
        [_Feat(r) for r in records],
        cannot_link=cannot_link,
        auto_threshold=auto_threshold,
        candidate_threshold=candidate_threshold,
        processes=processes,
    )


def _deduplicate(
    feats: list[_Feat],
    *,
    cannot_link: Iterable[tuple[Key, Key]],
    auto_threshold: float,
    candidate_threshold: float,
    processes: int,
) -> DedupResult:
    links = list(cannot_link)
    cannot: dict[int, set[int]] = {}
    if links:  # the index only then: a dict entry per record
        index = {f.key: i for i, f in enumerate(feats)}
        for ka, kb in links:
            if ka in index and kb in index:
                cannot.setdefault(index[ka], set()).add(index[kb])
                cannot.setdefault(index[kb], set()).add(index[ka])
        del index
    shared = _shared_dois(feats)
    groups = _Groups(feats, shared)
    _join_existing_groups(feats, groups)
    merges: list[ScoredPair] = []
    active = _join_identical(feats, groups, cannot, shared, auto_threshold, merges)
    grey: list[_Scored] = []
    active_feats = [feats[i] for i in active]
    title_runs, heads = _title_runs(active_feats)
    runs = _packed_pairs(title_runs)
    del title_runs
    others = _packed_pairs(_blocked_pairs(active_feats, heads))
    del active_feats, heads
    # Identical titles first: once they are grouped, the other blocks' pairs inside one group
    # need no scoring. Each phase applies its automatic pairs best first.
    phases = [runs, _without(others, runs)]
    del runs, others
    compared = 0
    while phases:
        phase = phases.pop(0)

        def score_span(span: tuple[int, int], phase: _PackedPairs = phase) -> _PhaseScores:
            pairs = (
                (active[p >> _PAIR_SHIFT], active[p & _PAIR_LOW])
                for p in phase[span[0] : span[1]].tolist()
            )
            grey_now: list[_Scored] = []
            auto, compared_now = _score_phase(
                feats, groups, pairs, shared, auto_threshold, candidate_threshold, grey_now
            )
            return auto, compared_now, grey_now

        # The phase's pairs in contiguous spans, dealt to the processes (`forked_map`): no group
        # changes within a phase, and the spans' results put end to end are those of one pass
        # over the phase. Pairs of records grouped before the run, at its end, are passed over
        # unscored: SPANS_PER_PROCESS spans each give every process its share of the others.
        parts = processes * SPANS_PER_PROCESS if len(phase) >= FORKED_PAIRS_MIN else 1
        phase_spans = spans(len(phase), parts)
        auto = []
        for auto_now, compared_now, grey_now in forked_map(score_span, phase_spans, processes):
            auto.extend(auto_now)
            compared += compared_now
            grey.extend(grey_now)
        del phase, score_span
        auto.sort(key=lambda t: (-t[0], t[1], t[2]))
        for score, i, j, reason in auto:
            ra, rb = groups.find(i), groups.find(j)
            if ra == rb:
                continue
            why_not = groups.conflict(ra, rb, cannot)
            if why_not:
                grey.append((score, i, j, f"{reason} (not merged: {why_not})"))
                continue
            groups.union(ra, rb)
            merges.append(ScoredPair(feats[i].key, feats[j].key, round(score, 2), reason))
    clusters: dict[int, list[Key]] = {}
    for i, f in enumerate(feats):
        clusters.setdefault(groups.find(i), []).append(f.key)
    return DedupResult(
        clusters=list(clusters.values()),
        merges=merges,
        candidates=_best_candidates(feats, groups, grey, cannot),
        pairs_compared=compared,
    )


def _join_existing_groups(feats: Sequence[_Feat], groups: _Groups) -> None:
    """Records of one existing study start joined."""
    first_of_group: dict[Key, int] = {}
    for i, f in enumerate(feats):
        if f.group is None:
            continue
        if f.group in first_of_group:
            ra, rb = groups.find(first_of_group[f.group]), groups.find(i)
            if ra != rb:
                groups.union(ra, rb)
        else:
            first_of_group[f.group] = i


def _join_identical(
    feats: Sequence[_Feat],
    groups: _Groups,
    cannot: dict[int, set[int]],
    shared: frozenset[str],
    auto_threshold: float,
    merges: list[ScoredPair],
) -> list[int]:
    """Records identical in every compared field (the same export twice, case aside) join at
    once, when the record is informative enough to merge with its own copy; only one of them
    goes on to blocking and scoring. Returns the indices that do."""
    by_signature: dict[tuple[Hashable, ...], tuple[int, float, str]] = {}
    active: list[int] = []
    for i, f in enumerate(feats):
        if f.group is None and i not in cannot:
            signature = f.signature()
            twin = by_signature.get(signature)
            if twin is not None:
                first, score, reason = twin
                groups.union(groups.find(first), groups.find(i))
                merges.append(ScoredPair(feats[first].key, f.key, score, reason))
                continue
            score, reason, hard = score_pair(f, f, shared)
            if score >= auto_threshold and not hard:
                # One reason string for all the copies of a record (a file imported many
                # times makes a merge per copy).
                by_signature[signature] = (i, round(score, 2), f"identical records: {reason}")
        active.append(i)
    return active


def _score_phase(
    feats: Sequence[_Feat],
    groups: _Groups,
    pairs: Iterable[tuple[int, int]],
    shared: frozenset[str],
    auto_threshold: float,
    candidate_threshold: float,
    grey: list[_Scored],
) -> tuple[list[_Scored], int]:
    """Score the pairs not settled yet: the automatic ones best first, and how many were
    scored; grey-zone pairs go to `grey`."""
    auto: list[_Scored] = []
    compared = 0
    pairs = iter(pairs)
    # A batch of pairs at a time for `_worth_scoring`: no group changes within a phase.
    while batch := list(islice(pairs, PAIRS_PER_BATCH)):
        open_pairs = [
            (i, j)
            for i, j in batch
            # Both grouped: settled in an earlier run (or by a reviewer).
            if (feats[i].group is None or feats[j].group is None)
            and groups.find(i) != groups.find(j)
        ]
        worth = _worth_scoring([feats[i] for i, _ in open_pairs], [feats[j] for _, j in open_pairs])
        for (i, j), worth_it in zip(open_pairs, worth, strict=True):
            if not worth_it:
                continue
            compared += 1
            score, reason, hard = score_pair(feats[i], feats[j], shared)
            if score >= auto_threshold and not hard:
                auto.append((score, i, j, reason))
            elif score >= candidate_threshold:
                grey.append((score, i, j, reason))
    auto.sort(key=lambda t: (-t[0], t[1], t[2]))
    return auto, compared


def _worth_scoring(lefts: Sequence[_Blockable], rights: Sequence[_Blockable]) -> list[bool]:
    """For each pair (lefts[k], rights[k]): False for unrelated titles with nothing else that
    could lift the pair to the queue (year and author add at most 3.5 against the title's
    -5). Asked of many pairs at once: the titles are compared by `titles_near`."""
    worth = [True] * len(lefts)
    titled = [
        k
        for k, (fa, fb) in enumerate(zip(lefts, rights, strict=True))
        if fa.title
        and fb.title
        and not (fa.page_first and fa.page_first == fb.page_first)
        and not (fa.doi and fa.doi == fb.doi)
        and not (fa.pmid and fa.pmid == fb.pmid)
    ]
    near = titles_near([lefts[k].title for k in titled], [rights[k].title for k in titled])
    for k, title_near in zip(titled, near, strict=True):
        worth[k] = title_near
    return worth


def _best_candidates(
    feats: Sequence[_Feat], groups: _Groups, grey: list[_Scored], cannot: dict[int, set[int]]
) -> list[ScoredPair]:
    """The best grey-zone pair per pair of groups, for a human, best first."""
    best: dict[tuple[int, int], _Scored] = {}
    for item in grey:
        _, i, j, _ = item
        if j in cannot.get(i, ()):
            continue
        ra, rb = groups.find(i), groups.find(j)
        if ra == rb:
            continue
        if groups.group[ra] is not None and groups.group[rb] is not None:
            continue
        pair = (ra, rb) if ra < rb else (rb, ra)
        if pair not in best or item[0] > best[pair][0]:
            best[pair] = item
    return [
        ScoredPair(feats[i].key, feats[j].key, round(score, 2), reason)
        for score, i, j, reason in sorted(best.values(), key=lambda t: (-t[0], t[1], t[2]))
    ]


def _touched_key(record: DedupRecord | _Blockable) -> Key:
    """What `NearGroups.touched` holds of an existing record: its group, or its own key if
    it has none."""
    return record.group if record.group is not None else record.key


def records_to_compare(
    new: Sequence[DedupRecord], existing: Sequence[DedupRecord]
) -> list[DedupRecord]:
    """The existing records an incremental run must see: every record of each existing group
    (study) near a new record (see `NearGroups`). Groups no new record comes near are left
    out, so a run scores the new records only, against the studies they may belong to."""
    near = NearGroups(new)
    near.scan(existing)
    return [r for r in existing if _touched_key(r) in near.touched]


class ScanFeatures:
    """What the near scan reads of an existing record: its title (normalised) and the fields
    of its blocking keys, about a third of a `_Feat`. A run keeps these for the records it
    has grouped or read, so that a pass does not read and normalise every existing record of
    the review again (at a million records that was 3 million normalisations in one run)."""

    # What a stored copy holds (`stored`), after its version: bump the version whenever the
    # normalisation of any of these changes, and the stored copies are computed again.
    STORED = (
        "title",
        "first",
        "year",
        "volume",
        "page_first",
        "doi",
        "pmid",
        "notice",
        "title_flags",
    )
    STORED_VERSION = 1
    # Surnames, years, volumes, pages and notices repeat across records: one object each.
    SHARED = frozenset({"first", "year", "volume", "page_first", "notice"})

    __slots__ = ("key", "group", *STORED)

    key: Key
    group: Key | None
    title: str
    first: str
    year: int | None
    volume: str
    page_first: str
    doi: str
    pmid: str
    notice: str
    title_flags: int

    def __init__(self, f: "_Feat", shared: dict[Any, Any]) -> None:
        self.key = f.key
        self.group = f.group
        # The title and the rest of what it tells (`_title_features`): a record read again for
        # scoring (an existing study near a new record) is not normalised again.
        title_flags = f.translated | f.informative << 1 | f.series << 2
        self._take([*(getattr(f, name) for name in self.STORED[:-1]), title_flags], shared)

    def _take(self, values: Sequence[Any], shared: dict[Any, Any]) -> None:
        """Set the STORED fields to `values`, in that order."""
        for name, value in zip(self.STORED, values, strict=True):
            setattr(self, name, shared.setdefault(value, value) if name in self.SHARED else value)

    @property
    def compact(self) -> str:
        return self.title.replace(" ", "")

    def stored(self) -> list[Any]:
        """These features as a JSON list, to store with the record (`from_stored`)."""
        return [self.STORED_VERSION, *(getattr(self, name) for name in self.STORED)]

    @classmethod
    def from_stored(
        cls, key: Key, group: Key | None, stored: Any, shared: dict[Any, Any]
    ) -> "ScanFeatures | None":
        """The features a record's `stored()` copy holds; None if there is none, or if it was
        stored by another version of the normalisation."""
        if not (
            isinstance(stored, list)
            and len(stored) == len(cls.STORED) + 1
            and stored[0] == cls.STORED_VERSION
        ):
            return None
        self = cls.__new__(cls)
        self.key, self.group = key, group
        self._take(stored[1:], shared)
        return self


def scan_features(records: Sequence[DedupRecord], shared: dict[Any, Any]) -> list[ScanFeatures]:
    """The records as the near scan reads them (`NearGroups.scan_features`)."""
    return [ScanFeatures(_Feat(r), shared) for r in records]


# Fewer new titles than this are walked in this process (`NearGroups.scan_features`).
FORKED_WALK_MIN = 20_000


@dataclass(frozen=True, slots=True)
class _TitlePlaces:
    """The new heads in one title order, the existing heads (their indices) in that order,
    and how many existing heads sort before each new head (`places[r]` for `new_order[r]`)."""

    new_order: list[int]
    at: list[int]
    places: list[int]


def _walk_title_neighbours(
    title_places: _TitlePlaces, span: tuple[int, int], meet: Callable[[int, int], None]
) -> None:
    """`meet` each new head of the span (of `new_order`) with the existing heads within
    WINDOW - 1 places of it in the order of all heads: a walk over its neighbourhood only,
    the order of a million existing heads never built."""
    new_order, at, places = title_places.new_order, title_places.at, title_places.places
    new_count, existing_count = len(new_order), len(at)
    for r in range(*span):
        i = new_order[r]
        place = places[r]
        # Before it: the larger of the next new head down (r - 1 - ...) and existing head
        # down (place - 1 - ...); an existing head k is after new head a if k >= places[a].
        a, k = r - 1, place - 1
        for _ in range(WINDOW - 1):
            if k >= 0 and (a < 0 or places[a] <= k):
                meet(i, at[k])
                k -= 1
            elif a >= 0:
                a -= 1
            else:
                break
        # After it: the smaller of the next new head up and existing head up.
        a, k = r + 1, place
        for _ in range(WINDOW - 1):
            if k < existing_count and (a >= new_count or k < places[a]):
                meet(i, at[k])
                k += 1
            elif a < new_count:
                a += 1
            else:
                break


# Fewer records than this are normalised in this process: a fork and the pickling of the
# features back cost more than they save.
FORKED_NORMALISE_MIN = 20_000


def normalised(records: Iterable[DedupRecord], processes: int = 1) -> "list[_Feat]":
    """The records' features, in order, normalised by `processes` processes at most: a share
    of the records each (`forked_map`), a child's features sent back as tuples of their
    values (a third of the pickling time of the objects). The records are then held at once;
    streamed, and normalised here, when one process is asked for."""
    if processes < 2:
        return [_Feat(r) for r in records]
    records = list(records)
    if len(records) < FORKED_NORMALISE_MIN:
        return [_Feat(r) for r in records]
    fields = attrgetter(*_Feat.__slots__)

    def values(span: tuple[int, int]) -> list[tuple[Any, ...]]:
        return [fields(_Feat(r)) for r in records[span[0] : span[1]]]

    shares = forked_map(values, spans(len(records), processes), processes)
    return [_Feat.from_values(v) for share in shares for v in share]


class NearGroups:
    """The existing groups (or ungrouped records' keys) with a record that shares a block with
    a new record and is worth scoring against it. A run scans all the existing records it
    keeps at once (`scan_features`); scanned a slice at a time, the groups touched are those
    one blocking per slice touches. The new records are normalised once, and a scan keeps no
    set of pairs: it walks the same blocks as `candidate_pairs` over the new records and the
    existing ones, but only the pairs of a new record with an existing one (the new records'
    titles, title order and blocks are computed once, not per scan)."""

    def __init__(self, new: Iterable[DedupRecord], processes: int = 1) -> None:
        """`processes`: how many processes may normalise many new records (`normalised`)."""
        self.new = normalised(new, processes)
        self.touched: set[Key] = set()
        # The new records' blocks and title orders, made at the first slice to scan: a run on
        # a review with no existing record never needs them (~170 bytes a block).
        self.prepared = False

    def _prepare(self) -> None:
        self.prepared = True
        self.new_blocks: dict[tuple[Hashable, ...], list[int]] = {}
        for i, f in enumerate(self.new):
            for key in _block_keys(f):
                self.new_blocks.setdefault(key, []).append(i)
        # Each distinct title's new records, in order; the first of each is its head.
        self.new_titles: dict[str, list[int]] = {}
        for i, f in enumerate(self.new):
            if f.compact:
                self.new_titles.setdefault(f.compact, []).append(i)
        heads = [members[0] for members in self.new_titles.values()]
        self.new_heads = sorted(heads, key=lambda i: self.new[i].compact)
        self.new_heads_reversed = sorted(heads, key=lambda i: self.new[i].compact[::-1])

    def scan(self, existing: Sequence[DedupRecord]) -> None:
        self.scan_features([_Feat(r) for r in existing])

    def scan_features(self, existing: Sequence[_Blockable], processes: int = 1) -> None:
        """Scan existing records (`_Feat` or the `ScanFeatures` a run keeps): the pairs of one
        blocking over the new records followed by these, in which a new record meets an
        existing one. The title neighbourhoods of many new titles are walked by `processes`
        processes (`forked_map`), a share of the new titles each: the groups touched are
        those one process touches."""
        if not self.new or not existing:
            return
        if not self.prepared:
            self._prepare()
        new = self.new
        first = len(new)
        touched = self.touched

        # The pairs met, whose existing group is not touched yet, wait for `_worth_scoring`
        # a batch at a time; once a group is touched, its other pairs are not asked.
        waiting: list[tuple[int, int]] = []

        def settle() -> None:
            worth = _worth_scoring([new[i] for i, _ in waiting], [existing[x] for _, x in waiting])
            for (_, x), worth_it in zip(waiting, worth, strict=True):
                if worth_it:
                    touched.add(_touched_key(existing[x]))
            waiting.clear()

        def meet(i: int, x: int) -> None:
            if _touched_key(existing[x]) not in touched:
                waiting.append((i, x))
                if len(waiting) >= PAIRS_PER_BATCH:
                    settle()

        # Identical titles (`_title_runs`): every existing record of a new record's title is
        # paired with that title's first new record, the title's first existing record also
        # with its last new one. The other existing titles' first records are heads.
        new_titles = self.new_titles
        met_titles: set[str] = set()
        heads: dict[str, int] = {}
        for x, f in enumerate(existing):
            compact = f.compact
            if not compact:
                continue
            members = new_titles.get(compact)
            if members is None:
                heads.setdefault(compact, x)
                continue
            meet(members[0], x)
            if compact not in met_titles:
                met_titles.add(compact)
                meet(members[-1], x)
        del met_titles
        # The title neighbourhoods (`_blocked_pairs`), in both orders: each new head meets the
        # existing heads among the WINDOW - 1 titles before and after it in the order of all
        # heads, new and existing (distinct titles, so that order is one). Walked last.
        orders = [self._title_places(heads, reverse=False), self._title_places(heads, reverse=True)]
        del heads
        # The other blocks that hold a new record (`_block_pairs`): the new members first,
        # then the slice's, in order, as in one blocking over both.
        blocks: dict[tuple[Hashable, ...], list[int]] = {}
        new_blocks = self.new_blocks
        for x, f in enumerate(existing):
            for key in _block_keys(f):
                if key in new_blocks:
                    blocks.setdefault(key, []).append(first + x)
        for key, ex_members in blocks.items():
            members = new_blocks[key] + ex_members
            if len(members) <= BLOCK_ALL_PAIRS_MAX:
                for i in new_blocks[key]:
                    for j in ex_members:
                        meet(i, j - first)
                continue

            def block_title(i: int) -> str:
                return new[i].compact if i < first else existing[i - first].compact

            members.sort(key=block_title)
            last = len(members) - 1
            for pos, i in enumerate(members):
                if i >= first:
                    continue
                lo, hi = max(0, pos - BLOCK_WINDOW + 1), min(last, pos + BLOCK_WINDOW - 1)
                for j in members[lo : hi + 1]:
                    if j >= first:
                        meet(i, j - first)
        del blocks
        settle()  # before any fork: each process starts from the groups touched so far

        def walk(item: tuple[_TitlePlaces, tuple[int, int]]) -> set[Key]:
            title_places, span = item
            _walk_title_neighbours(title_places, span, meet)
            settle()
            return touched

        heads_count = len(self.new_heads)
        if heads_count < FORKED_WALK_MIN:
            processes = 1
        shares = spans(heads_count, processes)
        for found in forked_map(walk, [(o, span) for o in orders for span in shares], processes):
            if found is not touched:
                touched |= found

    def _title_places(self, heads: dict[str, int], *, reverse: bool) -> "_TitlePlaces":
        """The order of the new heads by title (`reverse`: by reversed title), that of the
        existing heads (`heads`: title -> existing index), and each new head's place among
        these, found by bisection: the order of all heads, not built."""
        if reverse:
            heads = {title[::-1]: x for title, x in heads.items()}
            new_order = self.new_heads_reversed
        else:
            new_order = self.new_heads
        titles = sorted(heads)
        at = [heads[title] for title in titles]
        del heads
        new = self.new
        places = [
            bisect_left(titles, new[i].compact[::-1] if reverse else new[i].compact)
            for i in new_order
        ]
        return _TitlePlaces(new_order, at, places)

    def scan_kept(self, shared: dict[Any, Any]) -> list[ScanFeatures]:
        """The new records as later passes scan them (`ScanFeatures`), for a run to keep."""
        return [ScanFeatures(f, shared) for f in self.new]

    def deduplicate(
        self,
        near: Sequence[DedupRecord],
        *,
        cannot_link: Iterable[tuple[Key, Key]] = (),
        known: Mapping[Any, ScanFeatures] | None = None,
        processes: int = 1,
    ) -> DedupResult:
        """`deduplicate` of the new records followed by `near` (the records of the groups
        found near them), the new records not normalised again, nor the titles of the near
        records whose scan features are `known`; scored by `processes` processes at most. The
        scans are over."""
        known = known or {}
        self.new_blocks, self.new_titles, self.new_heads, self.new_heads_reversed = {}, {}, [], []
        self.prepared = True
        return _deduplicate(
            [*self.new, *(_Feat(r, known.get(r.key)) for r in near)],
            cannot_link=cannot_link,
            auto_threshold=AUTO_THRESHOLD,
            candidate_threshold=CANDIDATE_THRESHOLD,
            processes=processes,
        )


def most_complete(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A study's display fields from its records: the most complete value of each field.

    The longest title and abstract, the longest author list, the year most records give, a DOI
    and PMID if any record has one, the keywords of all records (first 40, in order).
    """
    if not records:
        return {}

    def longest(name: str) -> str:
        return max((str(r.get(name) or "") for r in records), key=len)

    def first(name: str) -> str:
        return next((str(r[name]) for r in records if r.get(name)), "")

    years: list[int] = [r["year"] for r in records if r.get("year")]
    year = max(sorted(set(years)), key=years.count) if years else None
    return {
        "title": longest("title"),
        "abstract": longest("abstract"),
        "authors": max((list(r.get("authors") or []) for r in records), key=len),
        "year": year,
        "venue": longest("venue"),
        "doi": first("doi"),
        "pmid": first("pmid"),
        "url": first("url"),
        "keywords": display_keywords(r.get("keywords") for r in records),
        "publication_type": first("publication_type"),
    }


def display_keywords(keyword_lists: Iterable[Any]) -> list[str]:
    """A study's keywords from its records' lists: each word once (folded), in order, the
    first 40."""
    keywords: list[str] = []
    seen: set[str] = set()
    for words in keyword_lists:
        for word in words or []:
            folded = fold(str(word))
            if folded and folded not in seen:
                seen.add(folded)
                keywords.append(str(word))
    return keywords[:40]
