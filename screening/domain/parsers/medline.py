"""PubMed MEDLINE (.nbib, .medline, .txt): four-character tags, six-space continuation lines."""

import re
from collections.abc import Iterable, Iterator

from .base import EntryProblem, ParsedRecord, RawFields, add_raw, first, make_record

_TAG = re.compile(r"^([A-Z][A-Z0-9]{1,3})\s*-\s?(.*)$")


def record_from_medline(raw: RawFields, line: int) -> ParsedRecord:
    def values(tag: str) -> list[str]:
        value = raw.get(tag)
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    doi = next((v for v in values("LID") + values("AID") if v.endswith("[doi]")), "")
    pmid = first(raw.get("PMID"))
    keywords = values("OT") or values("MH")
    return make_record(
        line=line,
        raw=raw,
        title=first(raw.get("TI"), raw.get("BTI"), raw.get("TT")),
        abstract=first(raw.get("AB")),
        authors=values("FAU") or values("AU"),
        year=first(raw.get("DP"), raw.get("DEP"), raw.get("EDAT")),
        venue=first(raw.get("JT"), raw.get("TA"), raw.get("BTI") if raw.get("TI") else ""),
        volume=first(raw.get("VI")),
        issue=first(raw.get("IP")),
        pages=first(raw.get("PG")),
        doi=doi.removesuffix("[doi]"),
        pmid=pmid,
        url=f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/" if pmid.isdigit() else "",
        keywords=[k.lstrip("*") for k in keywords],
        publication_type=first(raw.get("PT")),
        language=first(raw.get("LA")),
        source_record_id=pmid,
    )


def parse(lines: Iterable[str]) -> Iterator[ParsedRecord | EntryProblem]:
    raw: RawFields | None = None
    start_line = 0
    last_tag: str | None = None
    for line_no, line in enumerate(lines, start=1):
        text = line.rstrip("\n").replace("\ufeff", "")
        if not text.strip():
            if raw is not None:
                yield record_from_medline(raw, start_line)
                raw, last_tag = None, None
            continue
        if text.startswith(" ") and raw is not None and last_tag is not None:
            existing = raw[last_tag]
            if isinstance(existing, list):
                existing[-1] = f"{existing[-1]} {text.strip()}"
            else:
                raw[last_tag] = f"{existing} {text.strip()}"
            continue
        match = _TAG.match(text)
        if not match:
            yield EntryProblem(line_no, f"line not understood: {text[:60]!r}", "warning")
            continue
        tag, value = match.group(1), match.group(2).strip()
        if tag == "PMID" and raw is not None and "PMID" in raw:
            # Records not separated by a blank line.
            yield record_from_medline(raw, start_line)
            raw = None
        if raw is None:
            raw = {}
            start_line = line_no
        add_raw(raw, tag, value)
        last_tag = tag
    if raw is not None:
        yield record_from_medline(raw, start_line)
