"""Matching uploaded full-text PDFs to studies: by DOI (in the file name or inside the PDF) or
by file name (the study's number as our downloads name it, or its title).

Pure Python: the caller reads the PDF (see `dois_in_pdf`) and passes plain values in.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO

from pypdf import PdfReader
from pypdf.errors import PyPdfError

from .normalise import normalise_doi

_DOI_IN_TEXT = re.compile(r"10\.\d{4,9}/[^\s\"<>]+", re.I)
_STUDY_NUMBER = re.compile(r"(?:^|[^a-z0-9])study[-_ ]?(\d+)$")
# How many pages of a PDF are read for its DOI: it is printed on the first page or two.
PAGES_READ = 2


@dataclass(frozen=True)
class Candidate:
    """A study a PDF may belong to."""

    pk: int
    doi: str
    title: str


@dataclass(frozen=True)
class Match:
    study: Candidate | None
    how: str  # what matched, in words, or why nothing did


def _canon(text: str) -> str:
    """Letters and digits only, lowercase: file names lose "/" and gain "_" or "%2F"."""
    return re.sub(r"[^a-z0-9]", "", text.lower().replace("%2f", "/"))


def dois_in_pdf(stream: IO[bytes], *, pages: int = PAGES_READ) -> list[str]:
    """The DOIs in a PDF's metadata and its first pages' text, in order, normalised.

    An unreadable or encrypted PDF yields none (it can still match by file name).
    """
    try:
        reader = PdfReader(stream)
        if reader.is_encrypted:
            return []
        texts = [str(value) for value in (reader.metadata or {}).values()]
        texts += [page.extract_text() or "" for page in reader.pages[:pages]]
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return []
    found: list[str] = []
    for text in texts:
        for raw in _DOI_IN_TEXT.findall(text):
            doi = normalise_doi(raw)
            if doi and doi not in found:
                found.append(doi)
    return found


def match_pdf(
    *, file_name: str, dois_inside: Iterable[str], candidates: Sequence[Candidate]
) -> Match:
    """The study a PDF belongs to, trying the file name's DOI, the DOIs inside, then the name."""
    stem = file_name.rsplit("/", 1)[-1]
    stem = stem[:-4] if stem.lower().endswith(".pdf") else stem
    canon_stem = _canon(stem)
    with_doi = sorted((c for c in candidates if c.doi), key=lambda c: -len(c.doi))
    for candidate in with_doi:
        if _canon(candidate.doi) and _canon(candidate.doi) in canon_stem:
            return Match(candidate, f"DOI {candidate.doi} in the file name")
    by_doi = {c.doi.lower(): c for c in with_doi}
    for doi in dois_inside:
        if doi in by_doi:
            return Match(by_doi[doi], f"DOI {doi} inside the PDF")
    number = _STUDY_NUMBER.search(stem.lower())
    if number:
        by_pk = {c.pk: c for c in candidates}
        if int(number.group(1)) in by_pk:
            return Match(by_pk[int(number.group(1))], f"study number {number.group(1)}")
    titled = [c for c in candidates if c.title and _canon(c.title) == canon_stem]
    if len(titled) == 1:
        return Match(titled[0], "the file name is the study's title")
    inside = list(dois_inside)
    if inside:
        return Match(None, f"no study waiting for its full text has DOI {', '.join(inside[:3])}")
    return Match(None, "no DOI in the file name or the PDF, and no study's number or title")
