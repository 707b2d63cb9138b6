"""Normalisation of bibliographic fields: whitespace, DOI, year, LaTeX accents, authors.

Pure Python (no Django): the parsers and the deduplication code share these helpers.
"""

import html
import re
import unicodedata

_DOI_PREFIX = re.compile(
    r"^(?:doi:\s*|https?://(?:dx\.)?doi\.org/|https?://doi\.[a-z]+\.org/|doi\.org/)", re.I
)
_DOI_CORE = re.compile(r"10\.\d{4,9}/\S+", re.I)
_DOI_TRAILING = " .,;)]}>\"'"
_YEAR = re.compile(r"(?<!\d)(1[5-9]\d\d|20\d\d|21\d\d)(?!\d)")
_PMID = re.compile(r"^\d{1,9}$")

# Accent commands of LaTeX and the Unicode combining mark each one adds to its letter.
_LATEX_ACCENTS = {
    "`": "\u0300",
    "'": "\u0301",
    "^": "\u0302",
    "~": "\u0303",
    "=": "\u0304",
    "u": "\u0306",
    ".": "\u0307",
    '"': "\u0308",
    "r": "\u030a",
    "H": "\u030b",
    "v": "\u030c",
    "d": "\u0323",
    "c": "\u0327",
    "k": "\u0328",
    "b": "\u0331",
}
_LATEX_SYMBOLS = {
    "ss": "ß",
    "ae": "æ",
    "AE": "Æ",
    "oe": "œ",
    "OE": "Œ",
    "aa": "å",
    "AA": "Å",
    "o": "ø",
    "O": "Ø",
    "l": "ł",
    "L": "Ł",
    "i": "ı",
    "j": "ȷ",
    "textendash": "–",
    "textemdash": "—",
    "textquoteright": "’",
    "textquoteleft": "‘",
    "textquotedblleft": "“",
    "textquotedblright": "”",
    "textregistered": "®",
    "texttrademark": "™",
    "textcopyright": "©",
    "textdegree": "°",
    "textmu": "µ",
    "textbackslash": "\\",
    "dag": "†",
    "S": "§",
    "P": "¶",
    "pounds": "£",
    "euro": "€",
    "alpha": "α",
    "beta": "β",
    "gamma": "γ",
    "delta": "δ",
    "epsilon": "ε",
    "kappa": "κ",
    "lambda": "λ",
    "mu": "μ",
    "pi": "π",
    "sigma": "σ",
    "tau": "τ",
    "theta": "θ",
    "chi": "χ",
    "omega": "ω",
    "Delta": "Δ",
    "Omega": "Ω",
    "times": "×",
    "pm": "±",
    "leq": "≤",
    "geq": "≥",
    "le": "≤",
    "ge": "≥",
    "approx": "≈",
    "cdot": "·",
    "ldots": "…",
    "dots": "…",
}
# \'{e}, \'e, {\'e}, \"{\i}: an accent command, then its letter braced or bare.
_ACCENT_RE = re.compile(
    r"\\([`'^~=.\"]|[uvHrdckb](?![A-Za-z]))\s*(?:\{\s*(\\?[A-Za-z])\s*\}|(\\?[A-Za-z]))"
)
_SYMBOL_RE = re.compile(r"\\([A-Za-z]+)(?![A-Za-z])\s?(?:\{\})?")
_ESCAPED = re.compile(r"\\([&%$#_{}])")


def clean_text(value) -> str:
    """Collapse runs of whitespace (bare CRs and line breaks included) and trim."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    # str.split() splits on every Unicode space (CR, NBSP...) and is several times faster
    # than a regex on the hundreds of thousands of fields of a large export.
    return " ".join(value.split())


def latex_to_unicode(value: str) -> str:
    """Turn LaTeX accents and common symbols into Unicode and drop grouping braces.

    BibTeX titles arrive as `{\\"U}ber {B}ayesian` and ScienceDirect writes `\\textendash`;
    reviewers must read, search and deduplicate the plain text.
    """
    if "\\" not in value and "{" not in value and "$" not in value:
        return value

    def accent(match: re.Match) -> str:
        letter = match.group(2) or match.group(3)
        if letter.startswith("\\"):
            # \'\i is an accented i: the dotless form exists only to carry the accent.
            letter = {"i": "i", "j": "j"}.get(letter[1:]) or _LATEX_SYMBOLS.get(
                letter[1:], letter[1:]
            )
        return unicodedata.normalize("NFC", letter + _LATEX_ACCENTS[match.group(1)])

    value = _ACCENT_RE.sub(accent, value)

    def symbol(match: re.Match) -> str:
        name = match.group(1)
        if name in _LATEX_SYMBOLS:
            return _LATEX_SYMBOLS[name]
        # Formatting commands (\emph, \textit, \mathrm...) wrap text that must stay.
        return ""

    value = _SYMBOL_RE.sub(symbol, value)
    value = _ESCAPED.sub(r"\1", value)
    value = value.replace("{", "").replace("}", "")
    value = value.replace("---", "—").replace("--", "–").replace("~", " ")
    # Inline maths such as $\alpha$-helix: keep the content, drop the delimiters.
    value = re.sub(r"\$([^$]*)\$", r"\1", value)
    return value


def normalise_doi(value) -> str:
    """Lowercase DOI without resolver prefix ("https://doi.org/", "doi:"), or "" if none."""
    text = clean_text(value)
    if not text:
        return ""
    text = html.unescape(text)
    text = _DOI_PREFIX.sub("", text)
    # Scopus URLs carry the DOI percent-encoded ("10.1016%2fj.x"); the slash is what matters.
    text = text.replace("%2f", "/").replace("%2F", "/")
    match = _DOI_CORE.search(text)
    if not match:
        return ""
    doi = match.group(0).rstrip(_DOI_TRAILING)
    return doi.lower()[:255]


def normalise_year(value) -> int | None:
    """The first plausible four-digit year in a date field ("2019//", "1 Jan.-Feb. 2019")."""
    text = clean_text(value)
    if not text:
        return None
    match = _YEAR.search(text)
    return int(match.group(1)) if match else None


def normalise_pmid(value) -> str:
    text = clean_text(value)
    if text.lower().startswith("pmid:"):
        text = text[5:].strip()
    text = text.split()[0] if text else ""
    return text if _PMID.match(text) and text != "0" else ""


def split_list(value, separators: str = ";") -> list[str]:
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


def fold_for_match(value: str) -> str:
    """Lowercase ASCII letters and digits only: a loose key for comparing titles."""
    text = unicodedata.normalize("NFKD", value or "")
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]", "", text.lower())
