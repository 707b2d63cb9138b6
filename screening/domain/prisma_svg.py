"""The PRISMA 2020 flow diagram, laid out once and drawn as SVG or as a one-page PDF.

Pure Python. The layout follows the PRISMA 2020 template for new reviews (databases and
registers): phase bars on the left (Identification, Screening, Included), the main column of
boxes, and the boxes of what was removed or excluded to their right. Each box carries the
address of the list of studies behind its number, so the diagram drills down when clicked.

A funnel with `previous_studies` (a review updated by search rounds) is drawn on the template
for updated reviews (Page et al. 2021): a column for the studies of the previous version on the
left, and the total of previous and new studies at the bottom.

The PDF is drawn by fpdf2 with Kurinto Sans (SIL Open Font License, shipped by the
weblate-fonts package) embedded, so source names, reasons and titles in any script print as
written; the CJK cuts of the same family are embedded only when a text needs them.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from fontTools.subset import Options, Subsetter
from fontTools.ttLib import TTFont
from fpdf import FPDF

from .funnel import awaiting_figure, box_total

Linker = Callable[[str, str | None], str | None]
Link = Callable[..., str | None]
Arrow = tuple[float, float, float, float]

FONT_SIZE = 12
LINE_HEIGHT = 15
PADDING = 9
ROW_GAP = 34
WIDTH = 860
PHASE_X, PHASE_W = 10, 30
MAIN_X, MAIN_W = 56, 370
SIDE_X, SIDE_W = 476, 374
HEADER_H = 38
PREV_W, COLUMN_GAP = 230, 40

# Drill-down box of the studies still awaiting a decision (detail: the stage's key).
AWAITING = "awaiting"
FULL_TEXT_STAGE = "full_text"

FILL_HEADER = "#ffc000"
FILL_PHASE = "#9dc3e6"
FILL_PREVIOUS = "#d9d9d9"
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
    """Approximate rendered width in pixels (points) of `text` in Helvetica (a wide East Asian
    character counts a full em)."""
    units = sum(_WIDTHS.get(ch) or _wide_or_default(ch) for ch in text)
    return units * size / 1000 * (1.07 if bold else 1.0)


def _wide_or_default(ch: str) -> int:
    return 1000 if unicodedata.east_asian_width(ch) in ("W", "F") else 556


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
    headers: list[Box]
    boxes: list[Box]
    phases: list[Phase]
    arrows: list[Arrow]


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


def _linker(url: Linker | None) -> Callable[..., str | None]:
    def link(box: str, detail: str | None = None) -> str | None:
        return url(box, detail) if url else None

    return link


def _identified_lines(funnel: Mapping[str, Any], link: Link) -> list[Line]:
    sources = funnel.get("database_specific_results", {}) or {}
    lines = [
        Line("Records identified from:", bold=True),
        Line(f"Databases {count(box_total(funnel, 'database_results'))}", indent=1),
    ]
    lines += [
        Line(f"{name} {count(n)}", indent=2, link=link("database_results", name))
        for name, n in sources.items()
    ]
    awaiting = int(funnel.get("records_awaiting_deduplication", 0) or 0)
    if awaiting:
        lines.append(Line(f"Awaiting deduplication {count(awaiting)}", indent=1))
    return lines


def _removed_lines(funnel: Mapping[str, Any], link: Link) -> list[Line]:
    return [
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


def _screened_lines(funnel: Mapping[str, Any], link: Link) -> list[Line]:
    """Records screened, and while the review is in progress the studies still awaiting a
    screening decision per stage, so the box equals excluded + sought + awaiting."""
    screened = box_total(funnel, "records_screened")
    lines = [Line("Records screened", bold=True), Line(count(screened))]
    waiting = screened - box_total(funnel, "records_excluded")
    waiting -= box_total(funnel, "dbr_sought_reports")
    if waiting > 0:
        lines.append(Line(f"Awaiting screening {count(waiting)}", bold=True))
        lines += [
            Line(f"{s['name']}: {s['awaiting']:,}", indent=1, link=link(AWAITING, s["stage"]))
            for s in funnel.get("stages", [])
            if s.get("awaiting") and s.get("stage") != FULL_TEXT_STAGE
        ]
    return lines


def _excluded_lines(funnel: Mapping[str, Any]) -> list[Line]:
    return [
        Line("Records excluded", bold=True),
        Line(count(box_total(funnel, "records_excluded"))),
    ] + [
        Line(f"{s['name']}: {s['exclude']:,}", indent=1)
        for s in funnel.get("stages", [])
        if s.get("exclude") and s.get("stage") != FULL_TEXT_STAGE
    ]


def _assessed_lines(funnel: Mapping[str, Any], link: Link) -> list[Line]:
    """Reports assessed, with those still awaiting a full-text decision while in progress."""
    assessed = box_total(funnel, "dbr_assessed")
    lines = [Line("Reports assessed for eligibility", bold=True), Line(count(assessed))]
    waiting = awaiting_figure(funnel, FULL_TEXT_STAGE)
    if waiting > 0:
        lines.append(
            Line(
                f"Awaiting a full-text decision {count(waiting)}",
                bold=True,
                link=link(AWAITING, FULL_TEXT_STAGE),
            )
        )
    return lines


def _reason_lines(funnel: Mapping[str, Any], link: Link) -> list[Line]:
    reasons = funnel.get("dbr_excluded", {}) or {}
    lines = [Line("Reports excluded:", bold=True)]
    lines += [
        Line(
            f"{reason[:1].upper()}{reason[1:]} {count(n)}",
            indent=1,
            link=link("dbr_excluded", reason),
        )
        for reason, n in reasons.items()
    ]
    if not reasons:
        lines.append(Line(count(0), indent=1))
    return lines


def _included_lines(funnel: Mapping[str, Any], updated: bool) -> list[Line]:
    prefix = "New studies" if updated else "Studies"
    reports = "Reports of new included studies" if updated else "Reports of included studies"
    return [
        Line(f"{prefix} included in review", bold=True),
        Line(count(box_total(funnel, "new_studies"))),
        Line(reports, bold=True),
        Line(count(box_total(funnel, "new_reports"))),
    ]


@dataclass(frozen=True)
class Columns:
    """Where the columns of the diagram stand: the previous version's (updated reviews only),
    the main column and the column of what was removed or excluded."""

    prev_x: float
    prev_w: float
    main_x: float
    side_x: float
    width: float


NEW_REVIEW = Columns(prev_x=0, prev_w=0, main_x=MAIN_X, side_x=SIDE_X, width=WIDTH)
UPDATED_REVIEW = Columns(
    prev_x=MAIN_X,
    prev_w=PREV_W,
    main_x=MAIN_X + PREV_W + COLUMN_GAP,
    side_x=SIDE_X + PREV_W + COLUMN_GAP,
    width=WIDTH + PREV_W + COLUMN_GAP,
)

Row = tuple[str, Box | None, Box, Box | None]  # phase, previous-version box, main, side


def _rows(funnel: Mapping[str, Any], link: Link, cols: Columns) -> list[Row]:
    """The diagram's rows: (phase, box of the previous version's column, main box, side box)."""
    updated = cols.prev_w > 0

    def main(key: str, lines: list[Line]) -> Box:
        return _box(key, cols.main_x, MAIN_W, lines, link=link(key))

    def side(key: str, lines: list[Line]) -> Box:
        return _box(key, cols.side_x, SIDE_W, lines, link=link(key))

    def previous(key: str, lines: list[Line]) -> Box | None:
        return _box(key, cols.prev_x, cols.prev_w, lines, link=link(key)) if updated else None

    def number(key: str, label: str) -> list[Line]:
        return [Line(label, bold=True), Line(count(box_total(funnel, key)))]

    return [
        (
            "Identification",
            previous("previous_studies", _previous_lines(funnel)),
            main("database_results", _identified_lines(funnel, link)),
            side("duplicates", _removed_lines(funnel, link)),
        ),
        (
            "Screening",
            None,
            main("records_screened", _screened_lines(funnel, link)),
            side("records_excluded", _excluded_lines(funnel)),
        ),
        (
            "Screening",
            None,
            main(
                "dbr_sought_reports", number("dbr_sought_reports", "Reports sought for retrieval")
            ),
            side(
                "dbr_notretrieved_reports",
                number("dbr_notretrieved_reports", "Reports not retrieved"),
            ),
        ),
        (
            "Screening",
            None,
            main("dbr_assessed", _assessed_lines(funnel, link)),
            side("dbr_excluded", _reason_lines(funnel, link)),
        ),
        (
            "Included",
            previous("total_studies", _total_lines(funnel)),
            main("new_studies", _included_lines(funnel, updated)),
            None,
        ),
    ]


def _previous_lines(funnel: Mapping[str, Any]) -> list[Line]:
    return [
        Line("Studies included in previous version of review", bold=True),
        Line(count(box_total(funnel, "previous_studies"))),
        Line("Reports of studies included in previous version of review", bold=True),
        Line(count(box_total(funnel, "previous_reports"))),
    ]


def _total_lines(funnel: Mapping[str, Any]) -> list[Line]:
    return [
        Line("Total studies included in review", bold=True),
        Line(count(box_total(funnel, "total_studies"))),
        Line("Reports of total included studies", bold=True),
        Line(count(box_total(funnel, "total_reports"))),
    ]


def _headers(cols: Columns, top: float) -> list[Box]:
    headers = [
        Box(
            key="header",
            x=cols.main_x,
            y=top,
            w=cols.side_x + SIDE_W - cols.main_x,
            h=HEADER_H - 10,
            lines=[Line("Identification of new studies via databases and registers", bold=True)],
            fill=FILL_HEADER,
        )
    ]
    if cols.prev_w:
        headers.insert(
            0,
            Box(
                key="header-previous",
                x=cols.prev_x,
                y=top,
                w=cols.prev_w,
                h=HEADER_H - 10,
                lines=[Line("Previous studies", bold=True)],
                fill=FILL_PREVIOUS,
            ),
        )
    return headers


def _place(rows: list[Row], y: float) -> tuple[list[Box], list[Arrow], list[Phase], float]:
    """Stack the rows from `y` down, each as tall as its tallest box, with the arrows.

    In an updated review the previous version's box (first row) and the total (last row) share
    the left column: the total is fed by the previous version (down) and the new studies (left).
    """
    boxes: list[Box] = []
    arrows: list[Arrow] = []
    spans: list[list[Any]] = []
    above: Box | None = None
    first_prev: Box | None = None
    for phase_label, prev, main, side in rows:
        row = [b for b in (prev, main, side) if b is not None]
        row_h = max(b.h for b in row)
        for box in row:
            box.y = y
            box.h = row_h if len(row) > 1 else box.h
        boxes.extend(row)
        if side:
            arrows.append((main.x + main.w, y + row_h / 2, side.x, y + row_h / 2))
        if above is not None:
            x = main.x + main.w / 2
            arrows.append((x, above.y + above.h, x, y))
        if prev is not None and first_prev is not None:
            x = prev.x + prev.w / 2
            arrows.append((x, first_prev.y + first_prev.h, x, y))
            arrows.append((main.x, y + row_h / 2, prev.x + prev.w, y + row_h / 2))
        first_prev = first_prev or prev
        if spans and spans[-1][0] == phase_label:
            spans[-1][2] = y + row_h
        else:
            spans.append([phase_label, y, y + row_h])
        above = main
        y += row_h + ROW_GAP
    phases = [Phase(label, start, end - start) for label, start, end in spans]
    return boxes, arrows, phases, y - ROW_GAP + 14


def layout(funnel: Mapping[str, Any], *, title: str = "", url: Linker | None = None) -> Layout:
    """Place every box of the diagram for `funnel` (the JSON of screening.domain.funnel).

    `url(box, detail)` returns the drill-down address of a box (detail: a source or an
    exclusion reason, for the lines of the boxes that break their number down). A funnel with
    `previous_studies` (a review updated by search rounds) is drawn on the PRISMA 2020 template
    for updated reviews: the previous version's column, and the total of both.
    """
    cols = UPDATED_REVIEW if "previous_studies" in funnel else NEW_REVIEW
    top = 10 + LINE_HEIGHT + 8 if title else 10
    headers = _headers(cols, top)
    boxes, arrows, phases, height = _place(
        _rows(funnel, _linker(url), cols), top + headers[0].h + 22
    )
    return Layout(
        width=cols.width,
        height=height,
        title=title,
        headers=headers,
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
    for header in diagram.headers:
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


def prisma_svg(funnel: Mapping[str, Any], *, title: str = "", url: Linker | None = None) -> str:
    return render_svg(layout(funnel, title=title, url=url))


# PDF ------------------------------------------------------------------------------------------

_FONT_DIR = files("weblate_fonts") / "static" / "weblate_fonts" / "kurinto" / "ttf"
FONT = "KurintoSans"
# Cuts of the same family for the scripts the main one lacks, tried in this order.
FALLBACK_FONTS = ("KurintoSansSC", "KurintoSansJP", "KurintoSansKR", "KurintoSansTC")


# The characters most diagrams are written in (Latin with its extensions, Greek, Cyrillic,
# punctuation, currency, arrows and maths): a cut of the font to these is read by fpdf2 many
# times faster than the whole font, which is kept for text outside them.
COMMON_CHARACTERS = frozenset(
    code
    for first, last in (
        (0x20, 0x24F), (0x370, 0x3FF), (0x400, 0x52F), (0x1E00, 0x1EFF), (0x2000, 0x206F),
        (0x20A0, 0x20CF), (0x2100, 0x214F), (0x2190, 0x21FF), (0x2200, 0x22FF),
    )
    for code in range(first, last + 1)
)  # fmt: skip


def _source_font(family: str, bold: bool) -> str:
    return str(_FONT_DIR / f"{family}-{'Bd' if bold else 'Rg'}.ttf")


@cache
def _font_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="slrweb-fonts-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


@cache
def _font_file(family: str, bold: bool, common: bool = False) -> str:
    """The packaged font without its text-shaping tables, which the labels do not use (and, if
    `common`, cut to COMMON_CHARACTERS), written once per process for fpdf2 to read."""
    source = _source_font(family, bold)
    path = _font_folder() / f"{'common-' if common else ''}{Path(source).name}"
    with TTFont(source) as font:
        for tag in ("GSUB", "GPOS", "GDEF", "DSIG"):
            if tag in font:
                del font[tag]
        if common:
            options = Options()
            options.name_IDs = ["*"]
            options.notdef_outline = True
            subsetter = Subsetter(options)
            subsetter.populate(unicodes=COMMON_CHARACTERS & _cmap(family))
            subsetter.subset(font)
        font.save(path)
    return str(path)


@cache
def _cmap(family: str) -> frozenset[int]:
    """The characters a font has glyphs for (read once per process)."""
    with TTFont(_source_font(family, False), lazy=True) as font:
        return frozenset(font.getBestCmap())


def _fallbacks(texts: list[str]) -> list[str]:
    """The fallback fonts the texts need (none for Latin, Greek and Cyrillic text)."""
    missing = {ord(ch) for text in texts for ch in text} - _cmap(FONT)
    needed: list[str] = []
    for family in FALLBACK_FONTS:
        if not missing:
            break
        covered = missing & _cmap(family)
        if covered:
            needed.append(family)
            missing -= covered
    return needed


def _rgb(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    r, g, b = (int(color[i : i + 2], 16) for i in (0, 2, 4))
    return r, g, b


def _diagram_texts(diagram: Layout) -> list[str]:
    texts = [diagram.title] + [phase.label for phase in diagram.phases]
    return texts + [line.text for box in diagram.headers + diagram.boxes for line in box.lines]


def _pdf_document(diagram: Layout) -> FPDF:
    """An empty one-page document the diagram's size (points), its fonts embedded."""
    pdf = FPDF(unit="pt", format=(diagram.width, diagram.height))
    pdf.set_margin(0)
    pdf.set_auto_page_break(False)
    pdf.c_margin = 0
    pdf.add_page()
    texts = _diagram_texts(diagram)
    fallbacks = _fallbacks(texts)
    common = {ord(ch) for text in texts for ch in text} <= COMMON_CHARACTERS
    pdf.add_font(FONT, "", _font_file(FONT, False, common))
    pdf.add_font(FONT, "B", _font_file(FONT, True, common))
    for family in fallbacks:
        pdf.add_font(family, "", _font_file(family, False))
        pdf.add_font(family, "B", _font_file(family, True))
    if fallbacks:
        pdf.set_fallback_fonts(fallbacks)
    pdf.set_draw_color(*_rgb(STROKE))
    pdf.set_text_color(0, 0, 0)
    return pdf


def _pdf_text(pdf: FPDF, x: float, y: float, text: str, *, bold: bool = False) -> None:
    """`text` with its baseline at `y`, as the SVG places it (cells are placed by their top)."""
    pdf.set_font(FONT, "B" if bold else "", FONT_SIZE)
    pdf.set_xy(x, y - FONT_SIZE * 0.8)
    pdf.cell(h=FONT_SIZE, text=text)


def _pdf_rect(pdf: FPDF, box: Box | Phase, x: float, w: float, fill: str, *, round_: bool) -> None:
    pdf.set_fill_color(*_rgb(fill))
    pdf.set_line_width(1)
    pdf.rect(x, box.y, w, box.h, style="DF", round_corners=round_, corner_radius=6)


def _pdf_arrow(pdf: FPDF, arrow: Arrow) -> None:
    """A line with its head at the second point, in any direction."""
    x1, y1, x2, y2 = arrow
    length = max(((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5, 1e-6)
    ux, uy = (x2 - x1) / length, (y2 - y1) / length
    pdf.set_line_width(1.3)
    pdf.set_fill_color(*_rgb(STROKE))
    pdf.line(x1, y1, x2 - 7 * ux, y2 - 7 * uy)
    bx, by = x2 - 8 * ux, y2 - 8 * uy
    pdf.polygon([(x2, y2), (bx - 4 * uy, by + 4 * ux), (bx + 4 * uy, by - 4 * ux)], style="F")


def _pdf_box(pdf: FPDF, box: Box) -> None:
    _pdf_rect(pdf, box, box.x, box.w, box.fill, round_=False)
    if box.link:
        pdf.link(box.x, box.y, box.w, box.h, box.link)
    y = box.y + PADDING + FONT_SIZE - 1
    for line in box.lines:
        _pdf_text(pdf, box.x + PADDING + line.indent * 12, y, line.text, bold=line.bold)
        y += LINE_HEIGHT


def render_pdf(diagram: Layout) -> bytes:
    """The diagram as a one-page vector PDF (the page is the diagram's size in points), each
    box a link to the studies behind it."""
    pdf = _pdf_document(diagram)
    if diagram.title:
        _pdf_text(pdf, MAIN_X, 10 + FONT_SIZE, diagram.title[:140], bold=True)
    for header in diagram.headers:
        _pdf_rect(pdf, header, header.x, header.w, header.fill, round_=True)
        label = header.lines[0].text
        pdf.set_font(FONT, "B", FONT_SIZE)
        x = header.x + (header.w - pdf.get_string_width(label)) / 2
        _pdf_text(pdf, x, header.y + header.h / 2 + 4, label, bold=True)
    for phase in diagram.phases:
        _pdf_rect(pdf, phase, PHASE_X, PHASE_W, FILL_PHASE, round_=True)
        cx, cy = PHASE_X + PHASE_W / 2, phase.y + phase.h / 2
        pdf.set_font(FONT, "B", FONT_SIZE)
        # Placed by its baseline: fpdf2 draws no cell inside a rotation (the labels are the
        # template's own words, which the main font has).
        with pdf.rotation(90, cx, cy):
            pdf.text(cx - pdf.get_string_width(phase.label) / 2, cy + 4, phase.label)
    for arrow in diagram.arrows:
        _pdf_arrow(pdf, arrow)
    for box in diagram.boxes:
        _pdf_box(pdf, box)
    return bytes(pdf.output())


def prisma_pdf(funnel: Mapping[str, Any], *, title: str = "", url: Linker | None = None) -> bytes:
    return render_pdf(layout(funnel, title=title, url=url))
