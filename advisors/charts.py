"""Server-side charts: small SVG documents built from plain numbers.

The pages embed them inline: no JavaScript, no external service, no inline ``style`` (the CSP
forbids it) — only SVG presentation attributes (``fill``, ``stroke``, ``font-size`` …). Every
chart carries a ``<title>`` and a ``<desc>`` referenced by ``aria-labelledby`` so a screen reader
announces what it shows, and each bar or point has its own ``<title>`` (a tooltip with the
exact figure).

The functions are pure: numbers and already-translated text in, markup out (a
:class:`markupsafe.Markup`, so Jinja inserts it as is). All text is escaped; the output is
well-formed XML.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from markupsafe import Markup, escape

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "system-ui, -apple-system, 'PingFang SC', 'Microsoft YaHei', sans-serif"
TEXT = "#212529"
MUTED = "#6c757d"
GRID = "#dee2e6"
BAR = "#0d6efd"
TARGET = "#dc3545"
# Distinguishable colours (Okabe-Ito and Bootstrap), cycled; past them the dash pattern changes.
PALETTE = (
    "#0d6efd",
    "#d55e00",
    "#009e73",
    "#cc79a7",
    "#e69f00",
    "#56b4e9",
    "#6f42c1",
    "#20c997",
    "#6c757d",
    "#b8860b",
)
DASHES = (None, "6 3", "2 3", "8 3 2 3")

Number = int | float | Decimal


def _num(value: Any) -> float | None:
    """A finite float from a number (``None`` stays ``None``); anything else is an error."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TypeError(f"{value!r} is not a number")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{value!r} is not a finite number")
    return result


def fmt(value: Number | None) -> str:
    """A figure for a label: at most two decimals, no trailing zeros (``12.5``, ``60``)."""
    if value is None:
        return "—"
    number = round(float(value), 2)
    if not math.isfinite(number):  # a Decimal too large for a float: nothing sensible to draw
        return "—"
    if number == int(number):
        return str(int(number))
    return f"{number:.2f}".rstrip("0").rstrip(".")


def _c(value: float) -> str:
    """A coordinate, one decimal."""
    return f"{value:.1f}".rstrip("0").rstrip(".") or "0"


def nice_ceiling(value: float) -> float:
    """The smallest "round" number (1, 2, 2.5, 5 x 10^n) at or above ``value`` (1 for <= 0)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value - 1e-9:
            return float(candidate)
    return float(10 ** (exponent + 1))  # pragma: no cover - the loop always returns


def ticks(top: float, count: int = 5) -> list[float]:
    """Evenly spaced gridline values from 0 to ``top`` (inclusive), ``count`` intervals at most,
    on round steps."""
    step = nice_ceiling(top / max(count, 1))
    values = []
    n = 0
    while n * step <= top + 1e-9:
        values.append(round(n * step, 6))
        n += 1
    return values


def _markup(parts: list[str]) -> Markup:
    """The assembled SVG: every piece of text in ``parts`` went through ``escape`` and every
    attribute value is a number or a constant of this module."""
    return Markup("".join(parts))  # noqa: S704 (escaped piece by piece above)


def _open(width: int, height: int, id_prefix: str, title: str, desc: str, kind: str) -> list[str]:
    pid = escape(id_prefix)
    return [
        f'<svg xmlns="{SVG_NS}" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'class="chart chart-{kind}" preserveAspectRatio="xMidYMid meet" '
        f'aria-labelledby="{pid}-title {pid}-desc" font-family="{FONT}" font-size="12" '
        f'fill="{TEXT}">',
        f'<title id="{pid}-title">{escape(title)}</title>',
        f'<desc id="{pid}-desc">{escape(desc)}</desc>',
    ]


def _y_axis(
    parts: list[str], left: float, right: float, top: float, bottom: float, y_top: float, y_min=0.0
) -> None:
    span = (y_top - y_min) or 1.0
    for value in ticks(y_top - y_min):
        value += y_min
        y = bottom - (value - y_min) / span * (bottom - top)
        parts.append(
            f'<line x1="{_c(left)}" y1="{_c(y)}" x2="{_c(right)}" y2="{_c(y)}" '
            f'stroke="{GRID}" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{_c(left - 6)}" y="{_c(y + 4)}" text-anchor="end" fill="{MUTED}">'
            f"{escape(fmt(value))}</text>"
        )


def bin_counts(
    values: Sequence[Number | None], *, low: Number = 0, high: Number = 100, bins: int = 10
) -> list[int]:
    """How many ``values`` fall in each of ``bins`` equal bins from ``low`` to ``high``: the
    last bin includes ``high``; a value below ``low`` counts in the first bin and one above
    ``high`` in the last (an adjusted score may leave 0-100); ``None`` is skipped."""
    lo, hi = _num(low), _num(high)
    if bins < 1:
        raise ValueError("bins must be at least 1")
    if hi is None or lo is None or hi <= lo:
        raise ValueError("high must be above low")
    counts = [0] * bins
    width_of_bin = (hi - lo) / bins
    for raw in values:
        value = _num(raw)
        if value is None:
            continue
        index = int((value - lo) // width_of_bin)
        counts[min(max(index, 0), bins - 1)] += 1
    return counts


def histogram(
    values: Sequence[Number | None],
    *,
    low: Number = 0,
    high: Number = 100,
    bins: int = 10,
    **options: Any,
) -> Markup:
    """A histogram of ``values`` (binned by :func:`bin_counts`); ``options`` as for
    :func:`histogram_of_counts`."""
    counts = bin_counts(values, low=low, high=high, bins=bins)
    return histogram_of_counts(counts, low=low, high=high, **options)


def histogram_of_counts(
    counts: Sequence[int],
    *,
    title: str,
    desc: str,
    x_label: str = "",
    y_label: str = "",
    low: Number = 0,
    high: Number = 100,
    bar_title: str = "{range}: {count}",
    id_prefix: str = "histogram",
    width: int = 480,
    height: int = 260,
) -> Markup:
    """A histogram of counts already binned: ``counts[i]`` advisors in the i-th of
    ``len(counts)`` equal bins from ``low`` to ``high``. ``bar_title`` formats each bar's
    tooltip with ``{range}`` and ``{count}``."""
    lo, hi = _num(low), _num(high)
    bins = len(counts)
    if bins < 1:
        raise ValueError("at least one bin is required")
    if hi is None or lo is None or hi <= lo:
        raise ValueError("high must be above low")
    if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in counts):
        raise ValueError("counts must be whole numbers, not negative")
    counts = list(counts)
    left, right, top, bottom = 44.0, width - 12.0, 16.0, height - 44.0
    y_top = nice_ceiling(max(counts)) if max(counts) > 4 else max(max(counts), 4)
    parts = _open(width, height, id_prefix, title, desc, "histogram")
    _y_axis(parts, left, right, top, bottom, float(y_top))
    slot = (right - left) / bins
    width_of_bin = (hi - lo) / bins
    for i, count in enumerate(counts):
        start = lo + i * width_of_bin
        label = f"{fmt(start)}–{fmt(start + width_of_bin)}"
        bar_h = count / y_top * (bottom - top)
        _bar(parts, left + i * slot + 2, bottom, bar_h, slot, count, label, bar_title)
    parts.append(
        f'<line x1="{_c(left)}" y1="{_c(bottom)}" x2="{_c(right)}" y2="{_c(bottom)}" '
        f'stroke="{MUTED}" stroke-width="1"/>'
    )
    _axis_labels(parts, left, right, top, bottom, height, x_label, y_label)
    parts.append("</svg>")
    return _markup(parts)


def _bar(parts, x, bottom, bar_h, slot, count, label, bar_title) -> None:
    """One bar of a histogram: the bar with its tooltip, its count above, its range below."""
    y = bottom - bar_h
    tip = bar_title.format(range=label, count=count)
    parts.append(
        f'<rect x="{_c(x)}" y="{_c(y)}" width="{_c(slot - 4)}" height="{_c(bar_h)}" '
        f'fill="{BAR}"><title>{escape(tip)}</title></rect>'
    )
    if count:
        parts.append(
            f'<text x="{_c(x + (slot - 4) / 2)}" y="{_c(y - 3)}" text-anchor="middle">'
            f"{count}</text>"
        )
    parts.append(
        f'<text x="{_c(x + (slot - 4) / 2)}" y="{_c(bottom + 15)}" text-anchor="middle" '
        f'font-size="10" fill="{MUTED}">{escape(label)}</text>'
    )


def _axis_labels(parts, left, right, top, bottom, height, x_label: str, y_label: str) -> None:
    if x_label:
        parts.append(
            f'<text x="{_c((left + right) / 2)}" y="{height - 6}" text-anchor="middle" '
            f'fill="{MUTED}">{escape(x_label)}</text>'
        )
    if y_label:
        parts.append(
            f'<text x="12" y="{_c((top + bottom) / 2)}" text-anchor="middle" fill="{MUTED}" '
            f'transform="rotate(-90 12 {_c((top + bottom) / 2)})">{escape(y_label)}</text>'
        )


def line_chart(
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[Number | None]]],
    *,
    title: str,
    desc: str,
    y_max: Number | None = None,
    target: Number | None = None,
    target_label: str = "",
    id_prefix: str = "lines",
    width: int = 480,
    height: int = 260,
) -> Markup:
    """One line per ``(name, values)`` over the ``x_labels`` (a ``None`` value leaves a gap;
    a lone point shows as a dot). ``target`` draws a dashed horizontal line. The y scale runs
    from 0 to ``y_max`` (default: the largest value or target, rounded up). With more than one
    series a legend follows the plot (colours cycle, then the dash pattern changes)."""
    n = len(x_labels)
    parsed = []
    for name, values in series:
        if len(values) != n:
            raise ValueError(f"series {name!r} has {len(values)} values for {n} labels")
        parsed.append((str(name), [_num(v) for v in values]))
    target_value = _num(target)
    top_value = _y_top(parsed, target_value, _num(y_max))
    legend_rows = math.ceil(len(parsed) / 3) if len(parsed) > 1 else 0
    total_height = height + legend_rows * 18
    plot = _Plot(44.0, width - 16.0, 16.0, height - 40.0, n, top_value)
    parts = _open(width, total_height, id_prefix, title, desc, "lines")
    _y_axis(parts, plot.left, plot.right, plot.top, plot.bottom, top_value)
    parts.append(
        f'<line x1="{_c(plot.left)}" y1="{_c(plot.bottom)}" x2="{_c(plot.right)}" '
        f'y2="{_c(plot.bottom)}" stroke="{MUTED}" stroke-width="1"/>'
    )
    every = max(1, math.ceil(n / 12))
    for i, label in enumerate(x_labels):
        if i % every and i != n - 1:
            continue
        parts.append(
            f'<text x="{_c(plot.x_at(i))}" y="{_c(plot.bottom + 16)}" text-anchor="middle" '
            f'font-size="10" fill="{MUTED}">{escape(label)}</text>'
        )
    if target_value is not None and 0 <= target_value <= top_value:
        _target_line(parts, plot, target_value, target_label)
    for s, (name, values) in enumerate(parsed):
        _series_line(parts, plot, s, name, values, x_labels)
    if legend_rows:
        _legend(parts, parsed, width, height)
    parts.append("</svg>")
    return _markup(parts)


def _y_top(parsed, target_value: float | None, y_max: float | None) -> float:
    """The top of the y scale: ``y_max``, else the largest value or target rounded up (> 0)."""
    top_value = y_max
    if top_value is None:
        candidates = [v for _name, vs in parsed for v in vs if v is not None]
        if target_value is not None:
            candidates.append(target_value)
        top_value = nice_ceiling(max(candidates, default=0.0))
    return top_value if top_value > 0 else 1.0


class _Plot:
    """A line chart's plot area: where the i-th label and a value are drawn."""

    def __init__(self, left, right, top, bottom, n: int, top_value: float):
        self.left, self.right, self.top, self.bottom = left, right, top, bottom
        self.n, self.top_value = n, top_value

    def x_at(self, i: int) -> float:
        left, right, n = self.left, self.right, self.n
        return (left + right) / 2 if n == 1 else left + 10 + i * (right - left - 20) / (n - 1)

    def y_at(self, v: float) -> float:
        span = self.bottom - self.top
        return self.bottom - min(max(v, 0.0), self.top_value) / self.top_value * span


def _style(s: int) -> tuple[str, str]:
    """The s-th series' colour and dash attribute (colours cycle, then the dash changes)."""
    colour = PALETTE[s % len(PALETTE)]
    dash = DASHES[(s // len(PALETTE)) % len(DASHES)]
    return colour, (f' stroke-dasharray="{dash}"' if dash else "")


def _target_line(parts, plot: _Plot, target_value: float, target_label: str) -> None:
    y = plot.y_at(target_value)
    parts.append(
        f'<line x1="{_c(plot.left)}" y1="{_c(y)}" x2="{_c(plot.right)}" y2="{_c(y)}" '
        f'stroke="{TARGET}" stroke-width="1.5" stroke-dasharray="5 3">'
        f"<title>{escape(target_label)}</title></line>"
    )
    if target_label:
        parts.append(
            f'<text x="{_c(plot.right)}" y="{_c(y - 4)}" text-anchor="end" font-size="10" '
            f'fill="{TARGET}">{escape(target_label)}</text>'
        )


def _series_line(parts, plot: _Plot, s: int, name: str, values, x_labels) -> None:
    """One series: its polylines (a gap at each missing value) and a dot per value."""
    colour, dash_attr = _style(s)
    parts.append(f'<g class="series" data-series="{s}">')
    segment: list[str] = []
    for i, value in enumerate([*values, None]):
        if value is not None:
            segment.append(f"{_c(plot.x_at(i))},{_c(plot.y_at(value))}")
            continue
        if len(segment) > 1:
            parts.append(
                f'<polyline points="{" ".join(segment)}" fill="none" stroke="{colour}" '
                f'stroke-width="2"{dash_attr}/>'
            )
        segment = []
    for i, value in enumerate(values):
        if value is None:
            continue
        parts.append(
            f'<circle cx="{_c(plot.x_at(i))}" cy="{_c(plot.y_at(value))}" r="3.5" '
            f'fill="{colour}">'
            f"<title>{escape(name)} · {escape(x_labels[i])}: {escape(fmt(value))}</title>"
            f"</circle>"
        )
    parts.append("</g>")


def _legend(parts, parsed, width: int, height: int) -> None:
    col_w = (width - 2 * 16) / 3
    for s, (name, _values) in enumerate(parsed):
        colour, dash_attr = _style(s)
        x = 16 + (s % 3) * col_w
        y = height - 6 + (s // 3) * 18
        short = name if len(name) <= 16 else name[:15] + "…"
        parts.append(
            f'<line x1="{_c(x)}" y1="{_c(y - 4)}" x2="{_c(x + 18)}" y2="{_c(y - 4)}" '
            f'stroke="{colour}" stroke-width="2"{dash_attr}/>'
            f'<text x="{_c(x + 24)}" y="{_c(y)}"><title>{escape(name)}</title>'
            f"{escape(short)}</text>"
        )
