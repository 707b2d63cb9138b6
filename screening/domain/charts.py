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
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    maximum = max((n for row in matrix for n in row), default=0)
    step = nice_step(maximum)
    top_value = max(step * math.ceil(maximum / step), step)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-labelledby="fig2-title fig2-desc" '
        'font-family="Helvetica, Arial, sans-serif" font-size="12" class="chart-per-year">',
        f'<title id="fig2-title">{escape(title)}</title>',
        '<desc id="fig2-desc">'
        + escape(
            "; ".join(
                f"{year}: "
                + ", ".join(f"{source} {n}" for source, n in zip(sources, row, strict=True))
                for year, row in zip(years, matrix, strict=True)
            )
            or "No included studies yet."
        )
        + "</desc>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    legend_x = LEFT
    for index, source in enumerate(sources):
        color = PALETTE[index % len(PALETTE)]
        out.append(
            f'<rect x="{legend_x}" y="34" width="12" height="12" fill="{color}"/>'
            f'<text x="{legend_x + 17}" y="44">{escape(source)}</text>'
        )
        legend_x += 17 + 7 * len(source) + 22
    for tick in range(0, top_value + 1, step):
        y = TOP + plot_h - plot_h * tick / top_value
        out.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" '
            f'stroke="#d9d9d9" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>'
        )
    middle = TOP + plot_h / 2
    out.append(
        f'<text x="14" y="{middle:.1f}" transform="rotate(-90 14 {middle:.1f})" '
        'text-anchor="middle">Included studies</text>'
    )
    if years:
        group_w = plot_w / len(years)
        bar_w = max(min((group_w * 0.8) / max(len(sources), 1), 40), 1)
        for year_index, (year, row) in enumerate(zip(years, matrix, strict=True)):
            group_x = LEFT + group_w * year_index + (group_w - bar_w * len(sources)) / 2
            for source_index, n in enumerate(row):
                if not n:
                    continue
                h = plot_h * n / top_value
                x = group_x + bar_w * source_index
                y = TOP + plot_h - h
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
                f'<text x="{LEFT + group_w * (year_index + 0.5):.1f}" y="{TOP + plot_h + 18}" '
                f'text-anchor="middle">{year}</text>'
            )
    else:
        out.append(
            f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" text-anchor="middle" '
            'fill="#6c757d">No included studies yet</text>'
        )
    out.append(
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" '
        'stroke="#1f1f1f" stroke-width="1"/>'
    )
    out.append(
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 8}" text-anchor="middle">'
        "Publication year</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"
