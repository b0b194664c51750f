"""Charts of ``byoc metrics``, as text (a sparkline per node and metric, min/avg/max, thresholds
marked on a gauge, fitting 80 columns without colour) and as one self-contained HTML page (inline
SVG, nothing fetched from the network). Pure functions of a MetricsReport.
"""

from __future__ import annotations

import datetime
import html
from collections.abc import Sequence

from byoc.blueprint.iam import metrics_namespace
from byoc.operations.metrics import Metric, MetricsReport, Series, Threshold

BLOCKS = "▁▂▃▄▅▆▇█"
#: the gauge: filled up to the highest value, a marker where each threshold sits
FILL, EMPTY, MARK = "#", ".", "|"
STATS_WIDTH = 32  # "min xxxxxx avg xxxxxx max xxxxxx"
MIN_SPARK = 10
NO_DATA = "no data yet"
#: a line and how the terminal may style it: "" plain, "title", "warn" (over a threshold), "dim"
Line = tuple[str, str]


def fmt_value(v: float) -> str:
    """At most 6 characters below 1000T (7 when negative): 0.25, 42.5, 1.2k, 35.0M …"""
    a = abs(v)
    if round(a, 2) < 10:
        return f"{v:.2f}"
    if round(a, 1) < 1000:
        return f"{v:.1f}"
    for div, suffix in ((1e3, "k"), (1e6, "M"), (1e9, "G")):
        if round(a / div, 1) < 1000:
            return f"{v / div:.1f}{suffix}"
    return f"{v / 1e12:.1f}T"


def stats_text(st: tuple[float, float, float]) -> str:
    return f"min {fmt_value(st[0]):>6} avg {fmt_value(st[1]):>6} max {fmt_value(st[2]):>6}"


def scale(metric: Metric, series: Sequence[Series]) -> tuple[float, float]:
    """The value range every node of one chart shares: 0-100 for a percentage, else 0 (or the
    lowest value, when negative) to the highest value."""
    values = [v for s in series for v in s.values]
    hi = max(values, default=0.0)
    lo = min(0.0, min(values, default=0.0))
    if metric.unit == "%":
        hi = max(hi, 100.0)
    return lo, hi


def columns(s: Series, start: int, end: int, width: int) -> list[float | None]:
    """The series on a time axis of ``width`` columns from ``start`` to ``end`` (seconds): each
    column the mean of its points, None where there is none."""
    span = max(end - start, 1)
    sums: list[float] = [0.0] * width
    counts = [0] * width
    for t, v in zip(s.timestamps, s.values, strict=True):
        i = min(width - 1, max(0, int((t - start) * width / span)))
        sums[i] += v
        counts[i] += 1
    return [sums[i] / counts[i] if counts[i] else None for i in range(width)]


def sparkline(cols: Sequence[float | None], lo: float, hi: float) -> str:
    """One block character per column (a space where there is no point)."""
    out = []
    for v in cols:
        if v is None:
            out.append(" ")
            continue
        frac = 0.0 if hi <= lo else (min(max(v, lo), hi) - lo) / (hi - lo)
        out.append(BLOCKS[min(len(BLOCKS) - 1, int(frac * len(BLOCKS)))])
    return "".join(out)


def gauge(value: float, thresholds: Sequence[Threshold], lo: float, hi: float, width: int) -> str:
    """``[####....|..|.]``: filled up to ``value`` on the lo..hi scale, a | at each threshold."""
    inner = width - 2

    def pos(v: float) -> int:
        return 0 if hi <= lo else round((min(max(v, lo), hi) - lo) / (hi - lo) * inner)

    cells = [FILL if i < pos(value) else EMPTY for i in range(inner)]
    for t in thresholds:
        cells[min(inner - 1, pos(t.value))] = MARK
    return "[" + "".join(cells) + "]"


def threshold_note(peak: float, thresholds: Sequence[Threshold]) -> tuple[str, bool]:
    """What the highest value says against the thresholds, and whether it crossed one."""
    over = [t for t in thresholds if peak >= t.value]
    if over:
        t = max(over, key=lambda t: t.value)
        return f"max at/over {t.label} {t.value:g}", True
    t = min(thresholds, key=lambda t: t.value)
    return f"max under {t.label} {t.value:g}", False


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _when(ts: int) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%MZ")


def _period(seconds: int) -> str:
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % n == 0:
            return f"{seconds // n}{unit}"
    return f"{seconds}s"


def metric_source(report: MetricsReport, m: Metric, short: bool = False) -> str:
    """Where a chart comes from; ``short`` leaves out the cluster's own namespace."""
    ns = "" if short and m.namespace is None else (m.namespace or metrics_namespace(report.cluster)) + " "
    return f"{ns}{m.name} ({m.stat})"


def text_report(report: MetricsReport, width: int = 80) -> list[Line]:
    """Every chart as lines of at most ``width`` characters."""
    lines: list[Line] = [
        (_clip(f"{report.cluster}: {_when(report.start)} to {_when(report.end)}, a point per "
               f"{_period(report.period)}", width), "title"),
        (_clip(f"Lines run oldest to newest; {FILL} fills up to the max, {MARK} marks a threshold.", width),
         "dim"),
        (_clip(f"Metrics without a namespace are in {metrics_namespace(report.cluster)}.", width), "dim"),
    ]
    labels = {k: f"node {k}" for k in report.nodes}
    label_w = max((len(v) for v in labels.values()), default=6)
    spark_w = max(MIN_SPARK, width - 2 - label_w - 2 - 2 - STATS_WIDTH)
    for m in report.metrics:
        series = [report.series.get((m.key, k), Series()) for k in report.nodes]
        lines.append(("", ""))
        marks = ", ".join(f"{t.label} {t.value:g}" for t in m.thresholds)
        lines.append((_clip(m.title + (f" · {marks}" if marks else ""), width), "title"))
        lines.append((_clip("  " + metric_source(report, m, short=True), width), "dim"))
        if all(s.empty for s in series):
            empty = f"  {NO_DATA} for any node: CloudWatch has no {m.name} in this window"
            lines.append((_clip(empty, width), "warn"))
            continue
        lo, hi = scale(m, series)
        for key, s in zip(report.nodes, series, strict=True):
            st = s.stats()
            head = f"  {labels[key]:<{label_w}}  "
            if st is None:
                lines.append((head + NO_DATA, "warn"))
                continue
            spark = sparkline(columns(s, report.start, report.end, spark_w), lo, hi)
            lines.append((_clip(f"{head}{spark}  {stats_text(st)}", width), ""))
            if m.thresholds:
                note, crossed = threshold_note(st[2], m.thresholds)
                bar = gauge(st[2], m.thresholds, lo, hi, spark_w)
                gauge_line = f"  {'':<{label_w}}  {bar}  {note}"
                lines.append((_clip(gauge_line, width), "warn" if crossed else "dim"))
    return lines


# --- HTML ------------------------------------------------------------------------------------------

_CSS = """body{font-family:sans-serif;margin:1.5em;color:#222}h1{font-size:1.3em}h2{font-size:1.05em;
margin:1.4em 0 .2em}.src{color:#666;font-size:.85em}table{border-collapse:collapse;margin:.3em 0}
td,th{padding:.15em .6em;text-align:right;font-size:.9em}td.n{text-align:left}svg{background:#fafafa;
border:1px solid #ddd}.none{color:#a60}polyline{fill:none;stroke:#2563eb;stroke-width:1.5}
line.t{stroke:#c00;stroke-dasharray:4 3}text{font-size:10px;fill:#555}"""
SVG_W, SVG_H, PAD = 640, 110, 4


def _svg(report: MetricsReport, m: Metric, s: Series, lo: float, hi: float) -> str:
    span = max(report.end - report.start, 1)

    def x(t: int) -> float:
        return PAD + (t - report.start) / span * (SVG_W - 2 * PAD)

    def y(v: float) -> float:
        return SVG_H - PAD - (0.0 if hi <= lo else (v - lo) / (hi - lo)) * (SVG_H - 2 * PAD)

    pts = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(s.timestamps, s.values, strict=True))
    parts = [f'<svg width="{SVG_W}" height="{SVG_H}" viewBox="0 0 {SVG_W} {SVG_H}" role="img">']
    for t in m.thresholds:
        parts.append(f'<line class="t" x1="{PAD}" x2="{SVG_W - PAD}" y1="{y(t.value):.1f}" '
                     f'y2="{y(t.value):.1f}"/><text x="{SVG_W - 110}" y="{y(t.value) - 2:.1f}">'
                     f"{html.escape(t.label)} {t.value:g}</text>")
    parts.append(f'<text x="{PAD + 2}" y="12">{fmt_value(hi)}</text>'
                 f'<text x="{PAD + 2}" y="{SVG_H - PAD - 2}">{fmt_value(lo)}</text>')
    parts.append(f'<polyline points="{pts}"/></svg>')
    return "".join(parts)


def html_report(report: MetricsReport) -> str:
    """One HTML page with every chart: inline SVG and CSS, no script, no link to anywhere."""
    e = html.escape
    title = f"byoc metrics: {report.cluster}"
    out = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
           f"<style>{_CSS}</style></head><body><h1>{e(title)}</h1>"
           f"<p>{e(_when(report.start))} to {e(_when(report.end))}, one point per "
           f"{e(_period(report.period))}.</p>"]
    for m in report.metrics:
        series = [report.series.get((m.key, k), Series()) for k in report.nodes]
        lo, hi = scale(m, series)
        marks = ", ".join(f"{t.label} {t.value:g}" for t in m.thresholds)
        out.append(f"<section><h2>{e(m.title)}</h2><div class=\"src\">{e(metric_source(report, m))}"
                   f"{e(' · ' + marks) if marks else ''}</div>")
        out.append("<table><tr><th>node</th><th>min</th><th>avg</th><th>max</th><th></th></tr>")
        for key, s in zip(report.nodes, series, strict=True):
            st = s.stats()
            if st is None:
                out.append(f'<tr><td class="n">{e(key)}</td><td colspan="4" class="none">{NO_DATA}</td></tr>')
                continue
            cells = "".join(f"<td>{fmt_value(v)}</td>" for v in st)
            out.append(f'<tr><td class="n">{e(key)}</td>{cells}<td>{_svg(report, m, s, lo, hi)}</td></tr>')
        out.append("</table></section>")
    out.append("</body></html>\n")
    return "".join(out)
