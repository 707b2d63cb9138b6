"""EndNote / refer tagged text (%T title, %A author, ...), records separated by blank lines.

Not every record has a %0 type line (AIS eLibrary), so a blank line is the only boundary.
"""

import re
from collections.abc import Iterable, Iterator

from .base import EntryProblem, ParsedRecord, RawFields, add_raw, first, make_record

_TAG = re.compile(r"^%(\S)\s?(.*)$")


def record_from_refer(raw: RawFields, line: int) -> ParsedRecord:
    def values(tag: str) -> list[str]:
        value = raw.get(tag)
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    keywords = []
    for value in values("K"):
        keywords.extend(re.split(r"[;\n]", value))
    return make_record(
        line=line,
        raw=raw,
        title=first(raw.get("T")),
        abstract=first(raw.get("X")),
        authors=values("A"),
        year=first(raw.get("D"), raw.get("8")),
        venue=first(raw.get("J"), raw.get("B"), raw.get("S")),
        volume=first(raw.get("V")),
        issue=first(raw.get("N")),
        pages=first(raw.get("P")),
        doi=first(raw.get("R")),
        url=first(raw.get("U")),
        keywords=keywords,
        publication_type=first(raw.get("0")),
        language=first(raw.get("G")),
        source_record_id=first(raw.get("M"), raw.get("F")),
    )


def parse(lines: Iterable[str]) -> Iterator[ParsedRecord | EntryProblem]:
    raw: RawFields | None = None
    start_line = 0
    last_tag: str | None = None
    for line_no, line in enumerate(lines, start=1):
        text = line.rstrip("\n").replace("\ufeff", "")
        if not text.strip():
            if raw is not None:
                yield record_from_refer(raw, start_line)
                raw, last_tag = None, None
            continue
        match = _TAG.match(text)
        if not match:
            if raw is not None and last_tag is not None:
                existing = raw[last_tag]
                if isinstance(existing, list):
                    existing[-1] = f"{existing[-1]}\n{text.strip()}"
                else:
                    raw[last_tag] = f"{existing}\n{text.strip()}"
            else:
                yield EntryProblem(line_no, f"line outside a record: {text[:60]!r}", "warning")
            continue
        if raw is None:
            raw = {}
            start_line = line_no
        tag = match.group(1)
        add_raw(raw, tag, match.group(2).strip())
        last_tag = tag
    if raw is not None:
        yield record_from_refer(raw, start_line)
