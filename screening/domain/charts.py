"""Charts drawn by the app as SVG: the seed's Figure 2 (included studies per year per library).

Pure Python. Grouped bars (one group per year, one bar per library): a study found by several
libraries counts once in each, as in the paper, so bars are not stacked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

# Okabe-Ito: distinguishable with the common colour-vision deficiencies and in greyscale print.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")

WIDTH = 860
HEIGHT = 380
LEFT, RIGHT, TOP, BOTTOM = 56, 20, 64, 48
PLOT_W = WIDTH - LEFT - RIGHT
PLOT_H = HEIGHT - TOP - BOTTOM


def nice_step(maximum: int, ticks: int = 5) -> int:
    """A round tick step (1, 2, 5 x 10^k) so that about `ticks` ticks cover `maximum`."""
    if maximum <= ticks:
        return 1
    raw = maximum / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return int(factor * magnitude)
    return int(10 * magnitude)


def per_year_matrix(
    counts: Mapping[tuple[int, str], int], sources: Sequence[str]
) -> tuple[list[int], list[list[int]]]:
    """Years (every year from the first to the last, gaps included) and one row per year."""
    years_seen = sorted({year for year, _ in counts})
    if not years_seen:
        return [], []
    years = list(range(years_seen[0], years_seen[-1] + 1))
    return years, [[int(counts.get((year, source), 0)) for source in sources] for year in years]


def studies_per_year_svg(
    counts: Mapping[tuple[int, str], int],
    sources: Sequence[str],
    *,
    title: str = "Included studies per year and library",
) -> str:
    """Figure 2 as a standalone SVG document; `counts[(year, source)]` = included studies."""
    years, matrix = per_year_matrix(counts, sources)
    maximum = max((n for row in matrix for n in row), default=0)
    step = nice_step(maximum)
    top_value = max(step * math.ceil(maximum / step), step)
    out = [
        *_svg_head(title, years, matrix, sources),
        *_legend(sources),
        *_value_axis(top_value, step),
        *(_bars(years, matrix, sources, top_value) if years else [_NO_STUDIES]),
        f'<line x1="{LEFT}" y1="{TOP + PLOT_H}" x2="{LEFT + PLOT_W}" y2="{TOP + PLOT_H}" '
        'stroke="#1f1f1f" stroke-width="1"/>',
        f'<text x="{LEFT + PLOT_W / 2}" y="{HEIGHT - 8}" text-anchor="middle">'
        "Publication year</text>",
        "</svg>",
    ]
    return "\n".join(out) + "\n"


_NO_STUDIES = (
    f'<text x="{LEFT + PLOT_W / 2}" y="{TOP + PLOT_H / 2}" text-anchor="middle" '
    'fill="#6c757d">No included studies yet</text>'
)


def _svg_head(
    title: str, years: Sequence[int], matrix: Sequence[Sequence[int]], sources: Sequence[str]
) -> list[str]:
    """The root element, the accessible title and description (every count in words), the
    background and the visible title."""
    description = "; ".join(
        f"{year}: " + ", ".join(f"{source} {n}" for source, n in zip(sources, row, strict=True))
        for year, row in zip(years, matrix, strict=True)
    )
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-labelledby="fig2-title fig2-desc" '
        'font-family="Helvetica, Arial, sans-serif" font-size="12" class="chart-per-year">',
        f'<title id="fig2-title">{escape(title)}</title>',
        f'<desc id="fig2-desc">{escape(description or "No included studies yet.")}</desc>',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]


def _legend(sources: Sequence[str]) -> list[str]:
    """One colour swatch and name per library, in a row above the plot."""
    out = []
    legend_x = LEFT
    for index, source in enumerate(sources):
        color = PALETTE[index % len(PALETTE)]
        out.append(
            f'<rect x="{legend_x}" y="34" width="12" height="12" fill="{color}"/>'
            f'<text x="{legend_x + 17}" y="44">{escape(source)}</text>'
        )
        legend_x += 17 + 7 * len(source) + 22
    return out


def _value_axis(top_value: int, step: int) -> list[str]:
    """Grid lines with their counts, and the axis label."""
    out = []
    for tick in range(0, top_value + 1, step):
        y = TOP + PLOT_H - PLOT_H * tick / top_value
        out.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + PLOT_W}" y2="{y:.1f}" '
            f'stroke="#d9d9d9" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>'
        )
    middle = TOP + PLOT_H / 2
    out.append(
        f'<text x="14" y="{middle:.1f}" transform="rotate(-90 14 {middle:.1f})" '
        'text-anchor="middle">Included studies</text>'
    )
    return out


def _bars(
    years: Sequence[int],
    matrix: Sequence[Sequence[int]],
    sources: Sequence[str],
    top_value: int,
) -> list[str]:
    """One group of bars per year (a bar per library with studies), labelled when wide enough,
    and the year under each group."""
    out = []
    group_w = PLOT_W / len(years)
    bar_w = max(min((group_w * 0.8) / max(len(sources), 1), 40), 1)
    for year_index, (year, row) in enumerate(zip(years, matrix, strict=True)):
        group_x = LEFT + group_w * year_index + (group_w - bar_w * len(sources)) / 2
        for source_index, n in enumerate(row):
            if not n:
                continue
            h = PLOT_H * n / top_value
            x = group_x + bar_w * source_index
            y = TOP + PLOT_H - h
            color = PALETTE[source_index % len(PALETTE)]
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{color}"><title>{escape(sources[source_index])}, {year}: {n}'
                "</title></rect>"
            )
            if bar_w >= 12:
                out.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                    f'font-size="10">{n}</text>'
                )
        out.append(
            f'<text x="{LEFT + group_w * (year_index + 0.5):.1f}" y="{TOP + PLOT_H + 18}" '
            f'text-anchor="middle">{year}</text>'
        )
    return out
