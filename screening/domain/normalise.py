"""Normalisation of bibliographic fields, the one module for it (pure Python, no Django).

The parsers store what these functions make of a file's fields (clean text, DOI, PMID, year,
LaTeX turned into Unicode), and duplicate detection compares what they make of titles, authors,
venues, pages and volumes: case, accents, any script, punctuation, HTML and LaTeX debris,
language tags such as "[Chinese]", "Smith, J." against "J. Smith" against "Smith J", "73-6"
against "73-76", "Nat Rev Nephrol" against "Nature Reviews Nephrology".

Maintained libraries do the hard parts: pylatexenc reads LaTeX, anyascii transliterates every
script (Cyrillic, Greek, CJK...) to ASCII, and Unicode NFKC folds compatibility forms
(ligatures, full-width letters) first.
"""

import html
import re
import unicodedata
from functools import lru_cache

from anyascii import anyascii
from pylatexenc.latex2text import LatexNodes2Text

_DOI_PREFIX = re.compile(
    r"^(?:doi:\s*|doi\s+|https?://(?:dx\.)?doi\.org/|https?://doi\.[a-z]+\.org/|doi\.org/)", re.I
)
_DOI_CORE = re.compile(r"10\.\d{4,9}/\S+", re.I)
_DOI_TRAILING = " .,;)]}>\"'"
_YEAR = re.compile(r"(?<!\d)(1[5-9]\d\d|20\d\d|21\d\d)(?!\d)")
_PMID = re.compile(r"^\d{1,9}$")
# A "%" not escaped by a backslash starts a comment in LaTeX, but in an exported title it is a
# per cent sign ("50% of ..."): escaped before pylatexenc reads the text.
_BARE_PERCENT = re.compile(r"(?<!\\)%")
_LATEX = LatexNodes2Text(math_mode="text", strict_latex_spaces=True)


def clean_text(value: object) -> str:
    """Collapse runs of whitespace (bare CRs and line breaks included) and trim."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    # Most fields are already clean: printable (no CR, LF, tab or NBSP) with single spaces.
    if value.isprintable() and "  " not in value and value[:1] != " " and value[-1:] != " ":
        return value
    # str.split() splits on every Unicode space (CR, NBSP...) and is several times faster
    # than a regex on the hundreds of thousands of fields of a large export.
    return " ".join(value.split())


def latex_to_unicode(value: str) -> str:
    """LaTeX accents, symbols, dashes and inline maths as Unicode text; braces dropped.

    BibTeX titles arrive as `{\\"U}ber {B}ayesian` and ScienceDirect writes `\\textendash`;
    reviewers must read, search and deduplicate the plain text.
    """
    if "\\" not in value and "{" not in value and "$" not in value:
        return value
    return clean_text(_LATEX.latex_to_text(_BARE_PERCENT.sub(r"\\%", value)))


def normalise_doi(value: object) -> str:
    """Lowercase DOI without resolver prefix ("https://doi.org/", "doi:"), or "" if none."""
    text = clean_text(value)
    if not text:
        return ""
    if "&" in text:
        text = html.unescape(text)
    text = _DOI_PREFIX.sub("", text)
    # Scopus URLs carry the DOI percent-encoded ("10.1016%2fj.x"); the slash is what matters.
    text = text.replace("%2f", "/").replace("%2F", "/")
    match = _DOI_CORE.search(text)
    if not match:
        return ""
    doi = match.group(0).rstrip(_DOI_TRAILING)
    return doi.lower()[:255]


def normalise_year(value: object) -> int | None:
    """The first plausible four-digit year in a date field ("2019//", "1 Jan.-Feb. 2019")."""
    text = clean_text(value)
    if not text:
        return None
    match = _YEAR.search(text)
    return int(match.group(1)) if match else None


def normalise_pmid(value: object) -> str:
    """The PubMed identifier's digits ("PMID: 123 [Indexed for MEDLINE]" gives "123"), or ""."""
    text = clean_text(value)
    if text.lower().startswith("pmid:"):
        text = text[5:].strip()
    text = text.split()[0] if text else ""
    text = text.lstrip("0")
    return text if _PMID.match(text) else ""


def split_list(value: object, separators: str = ";") -> list[str]:
    """Split a delimited cell into trimmed, non-empty items, keeping their order."""
    text = clean_text(value)
    if not text:
        return []
    pattern = "|".join(re.escape(sep) for sep in separators)
    return [item.strip() for item in re.split(pattern, text) if item.strip()]


_GLUED_NAME_BOUNDARY = re.compile(
    r"(?<=[a-z\u00df-\u00ff])(?=[A-Z\u00c0-\u00de][a-z\u00df-\u00ff])"
)
_NAME_PARTICLES = {"Mc", "Mac", "De", "Di", "Da", "Le", "La", "Van", "Von", "Du", "Del"}


def split_glued_authors(value: str) -> list[str]:
    """Split Springer Link's author cell, where names are concatenated without separator.

    "Vivek K. PallipuramMohammad Bhuiyan" -> ["Vivek K. Pallipuram", "Mohammad Bhuiyan"].
    A boundary is a lowercase letter followed by a capitalised word, unless the part before it
    ends in a surname particle (McNamara, DeWitt) or holds no space yet (a single given name).
    """
    text = clean_text(value)
    if not text:
        return []
    names: list[str] = []
    start = 0
    for match in _GLUED_NAME_BOUNDARY.finditer(text):
        piece = text[start : match.start()]
        last_word = piece.rsplit(" ", 1)[-1]
        if " " not in piece.strip() or last_word in _NAME_PARTICLES or len(last_word) < 2:
            continue
        names.append(piece.strip())
        start = match.start()
    names.append(text[start:].strip())
    return [name for name in names if name]


_TAG_RE = re.compile(r"<[^>]{0,40}>")
_NON_ALNUM_RE = re.compile(r"[^0-9a-z]+")
# Ideographic and syllabic scripts write words without spaces; each character is transliterated
# as its own word so that titles in these scripts compare word by word like any other.
_CJK_RE = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]")
# A short bracketed group at the end of a title is a database annotation ("[Chinese]",
# "[Abstract]", "[letter]"), not part of the title.
_TRAILING_TAG_RE = re.compile(r"\s*[\[(][^\])]{1,40}[\])]\s*\.?\s*$")
_FIRST_NUMBER_RE = re.compile(r"[a-z]*\d+")
_DIGITS_RE = re.compile(r"\d+")


def fold(text: str) -> str:
    """Lowercase ASCII words separated by single spaces, from text in any script: markup,
    LaTeX, accents and punctuation gone, other scripts transliterated."""
    if not text:
        return ""
    if "<" in text:
        text = _TAG_RE.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    if "\\" in text or "$" in text:
        text = latex_to_unicode(text)
    elif "{" in text:
        text = text.replace("{", "").replace("}", "")
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
        if _CJK_RE.search(text):
            text = _CJK_RE.sub(lambda m: f" {anyascii(m.group(0))} ", text)
        text = anyascii(text)
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


def number_key(value: object) -> str:
    """The first number of a volume or issue ("Vol. 07" gives "7", "6016 LNCS" gives "6016")."""
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
