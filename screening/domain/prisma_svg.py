"""The PRISMA 2020 flow diagram, laid out once and drawn as SVG or as a one-page PDF.

Pure Python. The layout follows the PRISMA 2020 template for new reviews (databases and
registers): phase bars on the left (Identification, Screening, Included), the main column of
boxes, and the boxes of what was removed or excluded to their right. Each box carries the
address of the list of studies behind its number, so the diagram drills down when clicked.

The PDF is written by hand (PDF 1.4, the standard Helvetica fonts, link annotations) so the
export needs no browser, no Cairo and no extra package at run time.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from .funnel import box_total

FONT_SIZE = 12
LINE_HEIGHT = 15
PADDING = 9
ROW_GAP = 34
WIDTH = 860
PHASE_X, PHASE_W = 10, 30
MAIN_X, MAIN_W = 56, 370
SIDE_X, SIDE_W = 476, 374
HEADER_H = 38

FILL_HEADER = "#ffc000"
FILL_PHASE = "#9dc3e6"
FILL_BOX = "#ffffff"
STROKE = "#1f1f1f"

# Helvetica advance widths (per 1000 em) for ASCII; Arial shares them, so SVG viewers that
# substitute Arial wrap the same way.
_WIDTHS = dict(
    zip(
        " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
        "abcdefghijklmnopqrstuvwxyz{|}~",
        (
            278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
            556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
            1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
            667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
            333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
            556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
        ),
        strict=True,
    )
)  # fmt: skip


def text_width(text: str, *, size: float = FONT_SIZE, bold: bool = False) -> float:
    """Approximate rendered width in pixels (points) of `text` in Helvetica."""
    units = sum(_WIDTHS.get(ch, 556) for ch in text)
    return units * size / 1000 * (1.07 if bold else 1.0)


def wrap(text: str, width: float, *, size: float = FONT_SIZE, bold: bool = False) -> list[str]:
    """Greedy word wrap to `width`; a word longer than the line is cut."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if text_width(candidate, size=size, bold=bold) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        while text_width(word, size=size, bold=bold) > width and len(word) > 1:
            cut = len(word)
            while cut > 1 and text_width(word[:cut], size=size, bold=bold) > width:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current or not lines:
        lines.append(current)
    return lines


def count(n: int) -> str:
    return f"(n = {n:,})"


# url(box, detail): the drill-down address of a box, or of one line of it.
BoxUrl = Callable[[str, str | None], str]


@dataclass(frozen=True)
class Line:
    text: str
    bold: bool = False
    indent: int = 0
    link: str | None = None


@dataclass
class Box:
    key: str
    x: float
    y: float
    w: float
    h: float = 0.0
    lines: list[Line] = field(default_factory=list)
    fill: str = FILL_BOX
    link: str | None = None
    label: str = ""


@dataclass
class Phase:
    label: str
    y: float
    h: float


@dataclass
class Layout:
    width: float
    height: float
    title: str
    header: Box
    boxes: list[Box]
    phases: list[Phase]
    arrows: list[tuple[float, float, float, float]]


def _wrapped(entries: list[Line], width: float) -> list[Line]:
    out: list[Line] = []
    for entry in entries:
        indent_px = entry.indent * 12
        for piece in wrap(entry.text, width - indent_px, bold=entry.bold):
            out.append(Line(piece, entry.bold, entry.indent, entry.link))
    return out


def _box(
    key: str, x: float, w: float, entries: list[Line], *, link: str | None = None, label: str = ""
) -> Box:
    lines = _wrapped(entries, w - 2 * PADDING)
    return Box(
        key=key,
        x=x,
        y=0,
        w=w,
        h=len(lines) * LINE_HEIGHT + 2 * PADDING - 3,
        lines=lines,
        link=link,
        label=label,
    )


def layout(
    funnel: Mapping[str, Any],
    *,
    title: str = "",
    url: BoxUrl | None = None,
) -> Layout:
    """Place every box of the diagram for `funnel` (the JSON of screening.domain.funnel).

    `url(box, detail)` returns the drill-down address of a box (detail: a source name or an
    exclusion reason, for the lines of the boxes that break their number down).
    """

    def link(box: str, detail: str | None = None) -> str | None:
        return url(box, detail) if url else None

    sources = funnel.get("database_specific_results", {}) or {}
    reasons = funnel.get("dbr_excluded", {}) or {}

    identified = [
        Line("Records identified from:", bold=True),
        Line(f"Databases {count(box_total(funnel, 'database_results'))}", indent=1),
    ]
    identified += [
        Line(f"{name} {count(n)}", indent=2, link=link("database_results", name))
        for name, n in sources.items()
    ]
    awaiting = int(funnel.get("records_awaiting_deduplication", 0) or 0)
    if awaiting:
        identified.append(Line(f"Awaiting deduplication {count(awaiting)}", indent=1))
    removed = [
        Line("Records removed before screening:", bold=True),
        Line(f"Duplicate records {count(box_total(funnel, 'duplicates'))}", indent=1),
        Line(
            "Records marked as ineligible by automation tools "
            f"{count(box_total(funnel, 'excluded_automatic'))}",
            indent=1,
            link=link("excluded_automatic"),
        ),
        Line(
            f"Records removed for other reasons {count(box_total(funnel, 'excluded_other'))}",
            indent=1,
            link=link("excluded_other"),
        ),
    ]
    excluded_reasons = [Line("Reports excluded:", bold=True)]
    excluded_reasons += [
        Line(
            f"{reason[:1].upper()}{reason[1:]} {count(n)}",
            indent=1,
            link=link("dbr_excluded", reason),
        )
        for reason, n in reasons.items()
    ]
    if not reasons:
        excluded_reasons.append(Line(count(0), indent=1))

    rows = [
        (
            "Identification",
            _box("database_results", MAIN_X, MAIN_W, identified, link=link("database_results")),
            _box("duplicates", SIDE_X, SIDE_W, removed, link=link("duplicates")),
        ),
        (
            "Screening",
            _box(
                "records_screened",
                MAIN_X,
                MAIN_W,
                [
                    Line("Records screened", bold=True),
                    Line(count(box_total(funnel, "records_screened"))),
                ],
                link=link("records_screened"),
            ),
            _box(
                "records_excluded",
                SIDE_X,
                SIDE_W,
                [
                    Line("Records excluded", bold=True),
                    Line(count(box_total(funnel, "records_excluded"))),
                ]
                + [
                    Line(f"{s['name']}: {s['exclude']:,}", indent=1)
                    for s in funnel.get("stages", [])
                    if s.get("exclude") and s.get("stage") != "full_text"
                ],
                link=link("records_excluded"),
            ),
        ),
        (
            "Screening",
            _box(
                "dbr_sought_reports",
                MAIN_X,
                MAIN_W,
                [
                    Line("Reports sought for retrieval", bold=True),
                    Line(count(box_total(funnel, "dbr_sought_reports"))),
                ],
                link=link("dbr_sought_reports"),
            ),
            _box(
                "dbr_notretrieved_reports",
                SIDE_X,
                SIDE_W,
                [
                    Line("Reports not retrieved", bold=True),
                    Line(count(box_total(funnel, "dbr_notretrieved_reports"))),
                ],
                link=link("dbr_notretrieved_reports"),
            ),
        ),
        (
            "Screening",
            _box(
                "dbr_assessed",
                MAIN_X,
                MAIN_W,
                [
                    Line("Reports assessed for eligibility", bold=True),
                    Line(count(box_total(funnel, "dbr_assessed"))),
                ],
                link=link("dbr_assessed"),
            ),
            _box("dbr_excluded", SIDE_X, SIDE_W, excluded_reasons, link=link("dbr_excluded")),
        ),
        (
            "Included",
            _box(
                "new_studies",
                MAIN_X,
                MAIN_W,
                [
                    Line("Studies included in review", bold=True),
                    Line(count(box_total(funnel, "new_studies"))),
                    Line("Reports of included studies", bold=True),
                    Line(count(box_total(funnel, "new_reports"))),
                ],
                link=link("new_studies"),
            ),
            None,
        ),
    ]

    header = Box(
        key="header",
        x=MAIN_X,
        y=10,
        w=SIDE_X + SIDE_W - MAIN_X,
        h=HEADER_H - 10,
        lines=[Line("Identification of new studies via databases and registers", bold=True)],
        fill=FILL_HEADER,
    )
    top = 10
    if title:
        header.y = 10 + LINE_HEIGHT + 8
        top = header.y
    y = top + header.h + 22
    boxes: list[Box] = []
    arrows: list[tuple[float, float, float, float]] = []
    phase_spans: list[tuple[str, float, float]] = []  # label, top, bottom
    previous_main: Box | None = None
    for phase_label, main, side in rows:
        row_h = max(main.h, side.h if side else 0)
        main.y = y
        main.h = row_h if side else main.h
        boxes.append(main)
        if side:
            side.y = y
            side.h = row_h
            boxes.append(side)
            arrows.append((main.x + main.w, y + row_h / 2, side.x, y + row_h / 2))
        if previous_main is not None:
            arrows.append(
                (main.x + main.w / 2, previous_main.y + previous_main.h, main.x + main.w / 2, y)
            )
        if phase_spans and phase_spans[-1][0] == phase_label:
            phase_spans[-1] = (phase_label, phase_spans[-1][1], y + row_h)
        else:
            phase_spans.append((phase_label, y, y + row_h))
        previous_main = main
        y += row_h + ROW_GAP
    phases = [Phase(label, start, end - start) for label, start, end in phase_spans]
    return Layout(
        width=WIDTH,
        height=y - ROW_GAP + 14,
        title=title,
        header=header,
        boxes=boxes,
        phases=phases,
        arrows=arrows,
    )


def _svg_text(x: float, y: float, line: Line) -> str:
    weight = ' font-weight="bold"' if line.bold else ""
    return f'<text x="{x:.1f}" y="{y:.1f}"{weight}>{escape(line.text)}</text>'


def _svg_box(box: Box) -> list[str]:
    parts: list[str] = []
    rect = (
        f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" '
        f'fill="{box.fill}" stroke="{STROKE}" stroke-width="1"/>'
    )
    group = f'<g class="prisma-box" id="box-{escape(box.key)}" data-box={quoteattr(box.key)}>'
    parts.append(group)
    if box.link:
        parts.append(f"<a href={quoteattr(box.link)}><title>{escape(box.key)}</title>{rect}</a>")
    else:
        parts.append(rect)
    y = box.y + PADDING + FONT_SIZE - 1
    for line in box.lines:
        x = box.x + PADDING + line.indent * 12
        text = _svg_text(x, y, line)
        target = line.link or box.link
        parts.append(f"<a href={quoteattr(target)}>{text}</a>" if target else text)
        y += LINE_HEIGHT
    parts.append("</g>")
    return parts


def render_svg(diagram: Layout) -> str:
    """The diagram as a standalone SVG document (text escaped for XML)."""
    w, h = diagram.width, diagram.height
    out = [
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'viewBox="0 0 {w:.0f} {h:.0f}" width="{w:.0f}" height="{h:.0f}" role="img" '
        'aria-labelledby="prisma-title" class="prisma-diagram" '
        f'font-family="Helvetica, Arial, sans-serif" font-size="{FONT_SIZE}">',
        f'<title id="prisma-title">PRISMA 2020 flow diagram{": " if diagram.title else ""}'
        f"{escape(diagram.title)}</title>",
        '<defs><marker id="prisma-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
        f'<path d="M 0 0 L 10 5 L 0 10 z" fill="{STROKE}"/></marker></defs>',
        f'<rect x="0" y="0" width="{w:.0f}" height="{h:.0f}" fill="#ffffff"/>',
    ]
    if diagram.title:
        out.append(_svg_text(MAIN_X, 10 + FONT_SIZE, Line(diagram.title[:140], bold=True)))
    header = diagram.header
    out.append(
        f'<rect x="{header.x:.1f}" y="{header.y:.1f}" width="{header.w:.1f}" '
        f'height="{header.h:.1f}" rx="6" fill="{header.fill}" stroke="{STROKE}"/>'
    )
    out.append(
        f'<text x="{header.x + header.w / 2:.1f}" y="{header.y + header.h / 2 + 4:.1f}" '
        f'text-anchor="middle" font-weight="bold">{escape(header.lines[0].text)}</text>'
    )
    for phase in diagram.phases:
        cx, cy = PHASE_X + PHASE_W / 2, phase.y + phase.h / 2
        out.append(
            f'<rect x="{PHASE_X}" y="{phase.y:.1f}" width="{PHASE_W}" height="{phase.h:.1f}" '
            f'rx="6" fill="{FILL_PHASE}" stroke="{STROKE}"/>'
        )
        out.append(
            f'<text x="{cx:.1f}" y="{cy:.1f}" transform="rotate(-90 {cx:.1f} {cy:.1f})" '
            f'text-anchor="middle" dominant-baseline="central" font-weight="bold">'
            f"{escape(phase.label)}</text>"
        )
    for x1, y1, x2, y2 in diagram.arrows:
        out.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{STROKE}" '
            'stroke-width="1.3" marker-end="url(#prisma-arrow)"/>'
        )
    for box in diagram.boxes:
        out.extend(_svg_box(box))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def prisma_svg(
    funnel: Mapping[str, Any],
    *,
    title: str = "",
    url: BoxUrl | None = None,
) -> str:
    return render_svg(layout(funnel, title=title, url=url))


# PDF ------------------------------------------------------------------------------------------


def _pdf_string(text: str) -> str:
    """A PDF literal string in WinAnsiEncoding (Windows-1252, which the standard fonts cover:
    accented Latin letters, dashes, quotes); other characters become '?'."""
    data = text.encode("cp1252", errors="replace").decode("latin-1")
    return "(" + data.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def _hex_rgb(color: str) -> str:
    color = color.lstrip("#")
    r, g, b = (int(color[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return f"{r:.3f} {g:.3f} {b:.3f}"


def render_pdf(diagram: Layout) -> bytes:
    """The diagram as a one-page vector PDF (the page is the diagram's size in points)."""
    w, h = diagram.width, diagram.height
    ops: list[str] = []
    annotations: list[tuple[float, float, float, float, str]] = []

    def flip(y: float) -> float:
        return h - y

    def rect(x: float, y: float, rw: float, rh: float, fill: str) -> None:
        ops.append(f"{_hex_rgb(fill)} rg {_hex_rgb(STROKE)} RG 1 w")
        ops.append(f"{x:.1f} {flip(y + rh):.1f} {rw:.1f} {rh:.1f} re B")

    def text(
        x: float, y: float, content: str, *, bold: bool = False, matrix: str | None = None
    ) -> None:
        font = "F2" if bold else "F1"
        ops.append("0 0 0 rg BT")
        ops.append(f"/{font} {FONT_SIZE} Tf")
        ops.append(matrix or f"1 0 0 1 {x:.1f} {flip(y):.1f} Tm")
        ops.append(f"{_pdf_string(content)} Tj ET")

    if diagram.title:
        text(MAIN_X, 10 + FONT_SIZE, diagram.title[:140], bold=True)
    header = diagram.header
    rect(header.x, header.y, header.w, header.h, header.fill)
    label = header.lines[0].text
    text(
        header.x + (header.w - text_width(label, bold=True)) / 2,
        header.y + header.h / 2 + 4,
        label,
        bold=True,
    )
    for phase in diagram.phases:
        rect(PHASE_X, phase.y, PHASE_W, phase.h, FILL_PHASE)
        tx = PHASE_X + PHASE_W / 2 + 4
        ty = phase.y + phase.h / 2 + text_width(phase.label, bold=True) / 2
        text(0, 0, phase.label, bold=True, matrix=f"0 1 -1 0 {tx:.1f} {flip(ty):.1f} Tm")
    for x1, y1, x2, y2 in diagram.arrows:
        ops.append(f"{_hex_rgb(STROKE)} RG {_hex_rgb(STROKE)} rg 1.3 w")
        if y1 == y2:  # horizontal, pointing right
            ops.append(f"{x1:.1f} {flip(y1):.1f} m {x2 - 7:.1f} {flip(y2):.1f} l S")
            ops.append(
                f"{x2:.1f} {flip(y2):.1f} m {x2 - 8:.1f} {flip(y2) + 4:.1f} l "
                f"{x2 - 8:.1f} {flip(y2) - 4:.1f} l f"
            )
        else:  # vertical, pointing down
            ops.append(f"{x1:.1f} {flip(y1):.1f} m {x2:.1f} {flip(y2 - 7):.1f} l S")
            ops.append(
                f"{x2:.1f} {flip(y2):.1f} m {x2 - 4:.1f} {flip(y2 - 8):.1f} l "
                f"{x2 + 4:.1f} {flip(y2 - 8):.1f} l f"
            )
    for box in diagram.boxes:
        rect(box.x, box.y, box.w, box.h, box.fill)
        if box.link:
            annotations.append((box.x, flip(box.y + box.h), box.x + box.w, flip(box.y), box.link))
        y = box.y + PADDING + FONT_SIZE - 1
        for line in box.lines:
            text(box.x + PADDING + line.indent * 12, y, line.text, bold=line.bold)
            y += LINE_HEIGHT

    content = zlib.compress("\n".join(ops).encode("latin-1"))
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled once the page tree number is known
    pages = add(b"")
    font1 = add(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    )
    font2 = add(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>"
    )
    stream = add(
        f"<< /Length {len(content)} /Filter /FlateDecode >>\nstream\n".encode()
        + content
        + b"\nendstream"
    )
    annots = [
        add(
            (
                f"<< /Type /Annot /Subtype /Link /Rect [{x1:.1f} {y1:.1f} {x2:.1f} {y2:.1f}] "
                f"/Border [0 0 0] /A << /S /URI /URI {_pdf_string(uri)} >> >>"
            ).encode("latin-1", errors="replace")
        )
        for x1, y1, x2, y2, uri in annotations
    ]
    page = add(
        (
            f"<< /Type /Page /Parent {pages} 0 R /MediaBox [0 0 {w:.0f} {h:.0f}] "
            f"/Resources << /Font << /F1 {font1} 0 R /F2 {font2} 0 R >> >> "
            f"/Contents {stream} 0 R /Annots [{' '.join(f'{a} 0 R' for a in annots)}] >>"
        ).encode()
    )
    objects[catalog - 1] = f"<< /Type /Catalog /Pages {pages} 0 R >>".encode()
    objects[pages - 1] = f"<< /Type /Pages /Kids [{page} 0 R] /Count 1 >>".encode()

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root {catalog} 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)


def prisma_pdf(
    funnel: Mapping[str, Any],
    *,
    title: str = "",
    url: BoxUrl | None = None,
) -> bytes:
    return render_pdf(layout(funnel, title=title, url=url))
