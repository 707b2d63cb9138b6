"""Normalisation helpers used only by duplicate detection (pure Python, no Django).

They make two exports of the same paper comparable: case, accents, punctuation, HTML and
LaTeX debris, language tags such as "[Chinese]", "Smith, J." against "J. Smith" against
"Smith J", "73-6" against "73-76", "Nat Rev Nephrol" against "Nature Reviews Nephrology".
"""

import re
import unicodedata
from functools import lru_cache

_TAG_RE = re.compile(r"<[^>]{0,40}>")
_ENTITY_RE = re.compile(r"&(?:#\d+|#x[0-9a-f]+|[a-z]+);", re.IGNORECASE)
_LATEX_RE = re.compile(r"\\[a-zA-Z]+\s*|[{}$]")
_NON_ALNUM_RE = re.compile(r"[^0-9a-z]+")
# A short bracketed group at the end of a title is a database annotation ("[Chinese]",
# "[Abstract]", "[letter]"), not part of the title.
_TRAILING_TAG_RE = re.compile(r"\s*[\[(][^\])]{1,40}[\])]\s*\.?\s*$")
_DOI_PREFIX_RE = re.compile(r"^(?:https?://)?(?:dx\.)?(?:doi\.org/|doi:\s*|doi\s+)", re.IGNORECASE)
_DOI_RE = re.compile(r"10\.\d{4,9}/\S+")
_FIRST_NUMBER_RE = re.compile(r"[a-z]*\d+")
_DIGITS_RE = re.compile(r"\d+")


def fold(text: str) -> str:
    """Lowercase ASCII words separated by single spaces; markup, accents and punctuation gone."""
    if not text:
        return ""
    if "<" in text:
        text = _TAG_RE.sub(" ", text)
    if "&" in text:
        text = _ENTITY_RE.sub(" ", text)
    if "\\" in text or "{" in text:
        text = _LATEX_RE.sub("", text)
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
        text = text.replace("ß", "ss").replace("æ", "ae").replace("ø", "o").replace("ł", "l")
    return _NON_ALNUM_RE.sub(" ", text.lower()).strip()


def title_key(title: str) -> str:
    """The comparable form of a title: annotations stripped, folded."""
    title = (title or "").strip()
    if not title:
        return ""
    stripped = _TRAILING_TAG_RE.sub("", title)
    if len(stripped) >= 10:
        title = stripped
    if len(title) > 2 and title[0] == "[" and title.rstrip(".").endswith("]"):
        # MEDLINE brackets a whole title that was translated into English.
        title = title.rstrip(".")[1:-1]
    return fold(title)


def doi_key(doi: str) -> str:
    """The DOI as a lowercase bare identifier ("10.x/y"), or "" when it is not a DOI."""
    doi = (doi or "").strip()
    if not doi:
        return ""
    doi = _DOI_PREFIX_RE.sub("", doi)
    found = _DOI_RE.search(doi)
    if not found:
        return ""
    return found.group(0).lower().rstrip(".,;)]}")


def pmid_key(pmid: str) -> str:
    digits = _DIGITS_RE.findall(pmid or "")
    return digits[0].lstrip("0") if digits else ""


@lru_cache(maxsize=1 << 16)
def surname(author: str) -> str:
    """Folded surname of one author written as "Smith, J.", "J. Smith" or "Smith J"."""
    author = (author or "").strip()
    if not author:
        return ""
    if "," in author:
        return fold(author.split(",", 1)[0])
    words = fold(author).split()
    if not words:
        return ""
    if len(words) == 1:
        return words[0]
    last = words[-1]
    raw_last = author.split()[-1].strip(".")
    # MEDLINE style "Smith JA": the last word is upper-case initials, the surname comes first.
    if len(raw_last) <= 3 and raw_last.isupper():
        return " ".join(words[:-1])
    if len(last) == 1:
        return " ".join(w for w in words if len(w) > 1) or last
    return last


def split_authors(authors: str) -> list[str]:
    """Split a BibTeX-style author string ("A and B and C") or a "; "-joined list."""
    if not authors:
        return []
    parts = re.split(r"\s+and\s+|;\s*", authors)
    return [p.strip() for p in parts if p.strip()]


def page_key(pages: str) -> tuple[str, str]:
    """(first page, last page) with the last page expanded: "73-6" gives ("73", "76")."""
    pages = (pages or "").strip().lower()
    if not pages:
        return "", ""
    numbers = _FIRST_NUMBER_RE.findall(pages)
    if not numbers:
        return "", ""
    # Letter prefixes ("S12", "e3", "c37") are kept by some databases and dropped by others.
    first = numbers[0].lstrip("abcdefghijklmnopqrstuvwxyz").lstrip("0") or "0"
    if len(numbers) < 2:
        return first, ""
    last = numbers[1].lstrip("abcdefghijklmnopqrstuvwxyz").lstrip("0") or "0"
    if last.isdigit() and first.isdigit() and len(last) < len(first):
        last = first[: len(first) - len(last)] + last
    return first, last


def number_key(value) -> str:
    """The first number of a volume or issue ("Vol. 07" gives "7")."""
    if value is None:
        return ""
    found = _DIGITS_RE.search(str(value))
    if not found:
        return ""
    return found.group(0).lstrip("0") or "0"


_VENUE_STOP = frozenset({"the", "of", "and", "for", "in", "on", "de", "la", "et", "a", "an"})


@lru_cache(maxsize=1 << 14)
def venue_tokens(venue: str) -> tuple[str, ...]:
    return tuple(t for t in fold(venue).split() if t not in _VENUE_STOP)


def venues_compatible(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """True when one venue reads as an abbreviation of the other (or they are the same).

    Each word of the shorter form must begin a word of the longer one, in order:
    "nat rev nephrol" fits "nature reviews nephrology".
    """
    if not a or not b:
        return False
    if a == b:
        return True
    if sum(map(len, a)) > sum(map(len, b)):
        a, b = b, a
    j = 0
    matched = 0
    for token in a:
        while j < len(b) and not _abbreviates(token, b[j]):
            j += 1
        if j == len(b):
            break
        matched += 1
        j += 1
    return matched == len(a) and matched >= min(len(b), 2) * 0.6


def _abbreviates(short: str, word: str) -> bool:
    """ "nephrol" abbreviates "nephrology", "dtsch" abbreviates "deutsche"."""
    if word.startswith(short):
        return True
    if not short or short[0] != word[0] or len(short) > len(word):
        return False
    pos = 0
    for ch in short:
        pos = word.find(ch, pos) + 1
        if pos == 0:
            return False
    return True
