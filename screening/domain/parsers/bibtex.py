"""BibTeX from ACM, IEEE, ScienceDirect, Scopus, Web of Science, EBSCO, SAGE and SciELO.

bibtexparser 1.x reads the whole file into memory, drops an entry that repeats a field, keeps
only one of two entries with the same key and loses the first entry after a byte-order mark.
This reader streams the file entry by entry (braces balanced over lines), keeps every field
as the file gave it (repeated fields as lists), and turns LaTeX accents into Unicode.
"""

import re
from collections.abc import Iterable, Iterator

from ..normalise import latex_to_unicode, split_list
from .base import EntryProblem, ParsedRecord, ParseError, RawFields, add_raw, first, make_record

_ENTRY_START = re.compile(r"@\s*([A-Za-z][\w-]*)\s*([{(])")
# A new entry at the start of a line while the previous one is still open: that one is broken.
_LINE_ENTRY_START = re.compile(
    r"^\s*@\s*(article|inproceedings|incollection|inbook|book|booklet|conference|manual|"
    r"mastersthesis|phdthesis|thesis|misc|proceedings|techreport|unpublished|online|report|"
    r"dataset|software|electronic|periodical|standard|patent|collection|mvbook)\s*[{(]",
    re.I,
)
_BRACKETS = re.compile(r"[{}()\"\\]")
# Field names as exporters write them: "Usage-Count-(Last-180-days)", WoS' "Early Access
# Date" with spaces, Scopus' "funding_text\xa01" with a non-breaking space.
_NAME = r"[A-Za-z_][^=,{}\"\n]*?"
_FIELD_NAME = re.compile(rf"\s*({_NAME})\s*=\s*", re.S)
_AFTER_VALUE = re.compile(rf"\s*(?:#|$|,\s*(?:$|{_NAME}\s*=))")
_SKIP_TYPES = {"comment", "preamble"}
_MONTHS = {
    m: m.capitalize()
    for m in ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
}
_AND = re.compile(r"\s+and\s+", re.I)


class _Body:
    """Parses the text between an entry's outer braces: `key, name = value, ...`."""

    def __init__(self, text: str, macros: dict[str, str]):
        self.text = text
        self.pos = 0
        self.macros = macros

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def braced(self) -> str:
        depth = 0
        start = self.pos + 1
        for index in range(self.pos, len(self.text)):
            char = self.text[index]
            if char == "\\":
                continue
            if char == "{" and (index == 0 or self.text[index - 1] != "\\"):
                depth += 1
            elif char == "}" and self.text[index - 1] != "\\":
                depth -= 1
                if depth == 0:
                    self.pos = index + 1
                    return self.text[start:index]
        raise ValueError("a braced value is not closed")

    def quoted(self) -> str:
        depth = 0
        start = self.pos + 1
        for index in range(start, len(self.text)):
            char = self.text[index]
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
            elif (
                char == '"'
                and depth == 0
                and self.text[index - 1] != "\\"
                and _AFTER_VALUE.match(self.text, index + 1)
            ):
                # EBSCO leaves bare quotes inside quoted values ('Goal 3, "Health", and');
                # a quote ends the value only where a field separator or the end follows.
                self.pos = index + 1
                return self.text[start:index]
        raise ValueError("a quoted value is not closed")

    def value(self) -> str:
        parts = []
        while True:
            self.skip_ws()
            if self.pos >= len(self.text):
                break
            char = self.text[self.pos]
            if char == "{":
                parts.append(self.braced())
            elif char == '"':
                parts.append(self.quoted())
            else:
                match = re.compile(r"[^\s,#}]+").match(self.text, self.pos)
                if not match:
                    break
                word = match.group(0)
                self.pos = match.end()
                parts.append(self.macros.get(word.lower(), _MONTHS.get(word.lower(), word)))
            self.skip_ws()
            if self.pos < len(self.text) and self.text[self.pos] == "#":
                self.pos += 1
                continue
            break
        return "".join(parts)

    def fields(self) -> Iterator[tuple[str, str]]:
        while True:
            self.skip_ws()
            while self.pos < len(self.text) and self.text[self.pos] == ",":
                self.pos += 1
                self.skip_ws()
            if self.pos >= len(self.text):
                return
            match = _FIELD_NAME.match(self.text, self.pos)
            if not match:
                raise ValueError(f"unexpected text {self.text[self.pos : self.pos + 30]!r}")
            self.pos = match.end()
            yield " ".join(match.group(1).split()), self.value()


_FIRST_FIELD = re.compile(rf",\s*{_NAME}\s*=")


def _split_key(body: str) -> tuple[str, str]:
    """The citation key is everything before the comma that precedes the first field.

    Keys may be empty, spaced (WoS: "{ ISI:000186671900001,") or hold a comma (Scopus:
    "{Kenny20103,17,"): the first `, name =` marks where the fields begin.
    """
    match = _FIRST_FIELD.search(body)
    if match is None:
        comma = body.find(",")
        if comma < 0:
            return body.strip(), ""
        return body[:comma].strip(), body[comma + 1 :]
    head = body[: match.start()]
    if "=" in head:
        # No key at all ("@article{title = ...").
        return "", body
    return head.strip(), body[match.start() + 1 :]


def record_from_bibtex(raw: RawFields, line: int) -> ParsedRecord:
    fields = {k.lower(): v for k, v in raw.items() if not k.startswith("ENTRY")}

    def get(*names: str) -> str:
        return first(*(latex_value(fields.get(name)) for name in names))

    authors: list[str] = []
    for value in as_values(fields.get("author")):
        authors.extend(a for a in _AND.split(latex_to_unicode(value)) if a.strip())
    keywords: list[str] = []
    for name in ("keywords", "author_keywords", "keyword", "mesh"):
        for value in as_values(fields.get(name)):
            keywords.extend(
                split_list(latex_to_unicode(value), ";,")
                if ";" in value or "," in value
                else [latex_to_unicode(value)]
            )
    return make_record(
        line=line,
        raw=raw,
        title=get("title"),
        abstract=get("abstract"),
        authors=authors,
        year=get("year", "date"),
        venue=get("journal", "journaltitle", "booktitle", "series", "school", "institution"),
        volume=get("volume"),
        issue=get("number", "issue"),
        pages=get("pages").replace("–", "-"),
        doi=get("doi"),
        pmid=get("pmid"),
        url=get("url", "link"),
        keywords=keywords,
        publication_type=get("type") or raw.get("ENTRYTYPE", ""),
        language=get("language", "langid"),
        source_record_id=raw.get("ID", ""),
    )


def as_values(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def latex_value(value: str | list[str] | None) -> str | list[str] | None:
    if isinstance(value, list):
        return [latex_to_unicode(v) for v in value]
    return latex_to_unicode(value) if value else value


def _entry(
    entry_type: str, body: str, line: int, macros: dict[str, str]
) -> ParsedRecord | EntryProblem | None:
    kind = entry_type.lower()
    if kind in _SKIP_TYPES:
        return None
    if kind == "string":
        try:
            for name, value in _Body(body, macros).fields():
                macros[name.lower()] = value
        except ValueError as error:
            return EntryProblem(line, f"@string definition not understood: {error}")
        return None
    key, rest = _split_key(body)
    raw: RawFields = {"ENTRYTYPE": kind, "ID": key}
    try:
        for name, value in _Body(rest, macros).fields():
            add_raw(raw, name, value)
    except ValueError as error:
        if len(raw) <= 2:
            return EntryProblem(line, f"@{entry_type} entry {key!r} not understood: {error}")
        raw["_parse_warning"] = str(error)
    return record_from_bibtex(raw, line)


def _with_warning(item: ParsedRecord | EntryProblem) -> Iterator[ParsedRecord | EntryProblem]:
    if isinstance(item, ParsedRecord) and "_parse_warning" in item.raw:
        yield EntryProblem(
            item.line,
            f"entry {item.source_record_id!r}: fields after the damage were lost "
            f"({item.raw['_parse_warning']})",
            "warning",
        )
    yield item


def parse(lines: Iterable[str]) -> Iterator[ParsedRecord | EntryProblem]:
    macros: dict[str, str] = {}
    buffer: list[str] | None = None
    entry_type = ""
    closer = "}"
    depth = 0
    in_quote = False
    start_line = 0
    line_no = 0
    for line_no, line in enumerate(lines, start=1):
        line = line.replace("\ufeff", "")
        pos = 0
        if buffer is not None and _LINE_ENTRY_START.match(line):
            # The open entry never closed: parse what it holds and say so.
            item = _entry(entry_type, "".join(buffer), start_line, macros)
            if item is not None:
                yield EntryProblem(
                    start_line, "entry not closed before the next entry; closed there", "warning"
                )
                yield from _with_warning(item)
            buffer = None
        while pos < len(line):
            if buffer is None:
                at = line.find("@", pos)
                if at < 0:
                    break
                match = _ENTRY_START.match(line, at)
                if not match:
                    pos = at + 1
                    continue
                entry_type = match.group(1)
                closer = "}" if match.group(2) == "{" else ")"
                depth = 1
                in_quote = False
                start_line = line_no
                buffer = []
                pos = match.end()
                continue
            end = None
            for bracket in _BRACKETS.finditer(line, pos):
                char = bracket.group(0)
                index = bracket.start()
                if index > 0 and line[index - 1] == "\\":
                    continue
                if char == "{":
                    depth += 1
                elif char == "}":
                    depth -= 1
                    if depth == 0 and closer == "}":
                        end = index
                        break
                elif char == '"' and depth == 1 and closer == "}":
                    in_quote = not in_quote
                elif char == ")" and closer == ")" and depth == 1 and not in_quote:
                    end = index
                    break
            if end is None:
                buffer.append(line[pos:])
                break
            buffer.append(line[pos:end])
            item = _entry(entry_type, "".join(buffer), start_line, macros)
            if item is not None:
                yield from _with_warning(item)
            buffer = None
            pos = end + 1
    if buffer is not None:
        raise ParseError(
            f"the file ends inside the @{entry_type} entry that starts at line {start_line} "
            "(unbalanced braces): it looks truncated",
            line_no,
        )
