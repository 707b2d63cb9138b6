"""EndNote XML libraries: one <record> element at a time (iterparse, then cleared).

Read through defusedxml: a file that declares entities (a "billion laughs" or quadratic
blow-up) or refers to external ones is refused as it is met, whatever the system's libexpat
would allow. EndNote never writes either.
"""

from collections.abc import Iterator
from typing import BinaryIO
from xml.etree import ElementTree
from xml.etree.ElementTree import Element

from defusedxml import EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import iterparse

from .base import (
    EntryProblem,
    HostileFile,
    ParsedRecord,
    ParseError,
    RawFields,
    add_raw,
    first,
    make_record,
)


def _text(element: Element | None) -> str:
    # EndNote wraps text in <style> runs; a value is the concatenation of its runs.
    return "".join(element.itertext()) if element is not None else ""


def _flatten(element: Element, prefix: str, raw: RawFields) -> None:
    children = [child for child in element if child.tag != "style"]
    if not children:
        text = _text(element).strip()
        if text:
            add_raw(raw, prefix, text)
        return
    for child in children:
        _flatten(child, f"{prefix}/{child.tag}" if prefix else child.tag, raw)


def record_from_element(record: Element, position: int) -> ParsedRecord:
    raw: RawFields = {}
    for child in record:
        _flatten(child, child.tag, raw)
    ref_type = record.find("ref-type")
    if ref_type is not None and ref_type.get("name"):
        raw["ref-type/@name"] = ref_type.get("name")

    def texts(path: str) -> list[str]:
        return [_text(e).strip() for e in record.findall(path) if _text(e).strip()]

    def one(*paths: str) -> str:
        return first(*(texts(path) for path in paths))

    return make_record(
        line=position,
        raw=raw,
        title=one("titles/title"),
        abstract=one("abstract"),
        authors=texts("contributors/authors/author"),
        year=one("dates/year", "dates/pub-dates/date"),
        venue=one("titles/secondary-title", "periodical/full-title", "titles/alt-title"),
        volume=one("volume"),
        issue=one("number", "issue"),
        pages=one("pages"),
        doi=one("electronic-resource-num"),
        url=one("urls/related-urls/url", "urls/web-urls/url"),
        keywords=texts("keywords/keyword"),
        publication_type=raw.get("ref-type/@name", ""),
        language=one("language"),
        source_record_id=one("accession-num", "rec-number"),
    )


def parse(binary: BinaryIO) -> Iterator[ParsedRecord | EntryProblem]:
    position = 0
    stack: list[Element] = []
    try:
        events = iterparse(
            binary,
            events=("start", "end"),
            forbid_dtd=False,
            forbid_entities=True,
            forbid_external=True,
        )
        for event, element in events:
            if event == "start":
                stack.append(element)
                continue
            stack.pop()
            if element.tag != "record":
                continue
            position += 1
            yield record_from_element(element, position)
            # Drop the parsed record from its parent: the library may hold 100,000 of them.
            if stack:
                stack[-1].remove(element)
    except (EntitiesForbidden, ExternalReferenceForbidden) as error:
        raise _refusal(error) from error
    except ElementTree.ParseError as error:
        line, column = error.position
        raise ParseError(
            f"the XML is malformed or truncated at line {line}, column {column} "
            f"(after {position} complete records)",
            line,
        ) from error


def _refusal(error: EntitiesForbidden | ExternalReferenceForbidden) -> HostileFile:
    # An external reference always names its target; an entity declaration may not.
    if isinstance(error, ExternalReferenceForbidden) or error.sysid or error.pubid:
        return HostileFile(
            f"the XML refers to an outside file or address ({error.sysid or error.pubid}), "
            "which EndNote never writes and slrweb never fetches; the file was not read"
        )
    return HostileFile(
        f"the XML declares its own entity {error.name!r} (<!ENTITY ...>), which EndNote "
        "never writes and which can expand to gigabytes (a 'billion laughs' or quadratic "
        "blow-up file); the file was not read"
    )


def check_head(head: bytes) -> None:
    """Raise HostileFile if the first bytes declare or reference entities (the DTD comes
    first, so the head shows it); a head cut mid-element is no error here."""
    import io

    try:
        for _item in parse(io.BytesIO(head)):
            pass
    except HostileFile:
        raise
    except ParseError:
        return
