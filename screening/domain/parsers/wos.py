"""Web of Science plain text (.txt, .ciw, .isi): two-letter tags, three-space continuations,
PT starts a record and ER ends it. Zoological Record and other WoS databases use it too."""

import re
from collections.abc import Iterable, Iterator

from .base import (
    EntryProblem,
    ParsedRecord,
    ParseError,
    RawFields,
    add_raw,
    first,
    join_pages,
    make_record,
)

_TAG = re.compile(r"^([A-Z][A-Z0-9])(?: (.*))?$")
# Fields whose continuation lines are separate items rather than a wrapped sentence.
_LIST_TAGS = {"AU", "AF", "BA", "BF", "CR", "C1", "C3", "ED", "RI", "OI", "EM", "CA", "GP"}


def record_from_wos(raw: RawFields, line: int) -> ParsedRecord:
    def values(tag: str) -> list[str]:
        value = raw.get(tag)
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    keywords: list[str] = []
    for tag in ("DE", "ID"):
        for value in values(tag):
            keywords.extend(part for part in value.split(";"))
    return make_record(
        line=line,
        raw=raw,
        title=first(raw.get("TI")),
        abstract=first(raw.get("AB")),
        authors=values("AF") or values("AU") or values("BA"),
        year=first(raw.get("PY"), raw.get("PD"), raw.get("EA")),
        venue=first(raw.get("SO"), raw.get("SE"), raw.get("BS"), raw.get("J9")),
        volume=first(raw.get("VL")),
        issue=first(raw.get("IS")),
        pages=join_pages(first(raw.get("BP")), first(raw.get("EP"))) or first(raw.get("AR")),
        doi=first(raw.get("DI"), raw.get("D2")),
        pmid=first(raw.get("PM")),
        url="",
        keywords=keywords,
        publication_type=first(raw.get("DT"), raw.get("PT")),
        language=first(raw.get("LA")),
        source_record_id=first(raw.get("UT"), raw.get("AN")),
    )


def parse(lines: Iterable[str]) -> Iterator[ParsedRecord | EntryProblem]:
    raw: RawFields | None = None
    start_line = 0
    last_tag: str | None = None
    line_no = 0
    for line_no, line in enumerate(lines, start=1):
        text = line.rstrip("\n").replace("\ufeff", "")
        if not text.strip():
            continue
        if text.startswith(" ") and raw is not None and last_tag is not None:
            item = text.strip()
            existing = raw[last_tag]
            if last_tag in _LIST_TAGS:
                if not isinstance(existing, list):
                    raw[last_tag] = existing = [existing]
                existing.append(item)
            elif isinstance(existing, list):
                existing[-1] = f"{existing[-1]} {item}"
            else:
                raw[last_tag] = f"{existing} {item}"
            continue
        match = _TAG.match(text.rstrip())
        if not match:
            yield EntryProblem(line_no, f"line not understood: {text[:60]!r}", "warning")
            continue
        tag, value = match.group(1), (match.group(2) or "").strip()
        if tag in {"FN", "VR", "EF"} and raw is None:
            continue
        if tag == "ER":
            if raw is not None:
                yield record_from_wos(raw, start_line)
            raw, last_tag = None, None
            continue
        if tag == "PT" and raw is not None:
            yield EntryProblem(
                start_line, "record has no ER line; closed at the next PT", "warning"
            )
            yield record_from_wos(raw, start_line)
            raw = None
        if raw is None:
            raw = {}
            start_line = line_no
        add_raw(raw, tag, value)
        last_tag = tag
    if raw is not None:
        raise ParseError(
            f"the file ends inside the record that starts at line {start_line} (no ER line): "
            "it looks truncated",
            line_no,
        )
