"""The chart renderers of `byoc metrics` (pure): sparklines on a shared scale, the threshold gauge,
values in at most 6 characters, 80-column text whatever the labels, and an HTML page that loads
nothing from the network."""

from __future__ import annotations

from byoc.cli.charts import (
    BLOCKS,
    columns,
    fmt_value,
    gauge,
    html_report,
    scale,
    sparkline,
    text_report,
    threshold_note,
)
from byoc.operations.metrics import MetricsReport, Series, Threshold, cluster_metrics

MON = {"cpu_alarm_threshold_percent": 80, "disk_alarm_threshold_percent": 80}
T0 = 1_767_225_600


def report(nodes: dict[str, str], series: dict[tuple[str, str], Series]) -> MetricsReport:
    return MetricsReport("prod-proton", T0, T0 + 3600, 60, cluster_metrics(MON), nodes, series)


def test_values_fit_six_characters() -> None:
    assert [fmt_value(v) for v in (0.25, 42.46, 999.94, 1234.0, 35e6, 2.5e9, 7e15)] == [
        "0.25", "42.5", "999.9", "1.2k", "35.0M", "2.5G", "7000.0T"]
    assert all(len(fmt_value(v)) <= 6 for v in (0.001, 9.999, 99999.0, 999_999.0, 9.99e11))


def test_sparkline_on_a_time_axis_with_gaps() -> None:
    s = Series([T0, T0 + 60, T0 + 3000], [0.0, 100.0, 50.0])
    cols = columns(s, T0, T0 + 3600, 12)
    assert cols[0] == 50.0 and cols[1:10] == [None] * 9 and cols[10] == 50.0
    assert sparkline([0.0, None, 100.0, 50.0], 0.0, 100.0) == BLOCKS[0] + " " + BLOCKS[-1] + BLOCKS[4]
    assert sparkline([3.0, 3.0], 3.0, 3.0) == BLOCKS[0] * 2  # a flat series


def test_percentages_share_a_0_to_100_scale_and_thresholds_sit_where_they_belong() -> None:
    cpu = cluster_metrics(MON)[0]
    assert scale(cpu, [Series([T0], [12.0])]) == (0.0, 100.0)
    net = next(m for m in cluster_metrics(MON) if m.key == "network_in")
    assert scale(net, [Series([T0], [5.0]), Series([T0], [7.0])]) == (0.0, 7.0)
    marks = (Threshold(80, "alarm"), Threshold(90, "ingest stops"))
    bar = gauge(50.0, marks, 0.0, 100.0, 22)
    assert bar == "[##########......|.|.]"
    assert len(bar) == 22 and bar.index("|") == 1 + 16 and bar.rindex("|") == 1 + 18
    assert threshold_note(95.0, marks) == ("max at/over ingest stops 90", True)
    assert threshold_note(85.0, marks) == ("max at/over alarm 80", True)
    assert threshold_note(50.0, marks) == ("max under alarm 80", False)


def test_text_fits_80_columns_with_long_labels_and_says_no_data() -> None:
    nodes = {"0": "i-00000000000000000", "long-node-key-x": "i-00000000000000001"}
    series = {("cpu", "0"): Series([T0 + 60 * i for i in range(60)], [float(i) for i in range(60)]),
              ("disk", "long-node-key-x"): Series([T0], [91.0])}
    lines = text_report(report(nodes, series))
    text = [line for line, _ in lines]
    assert max(map(len, text)) <= 80
    assert "  node long-node-key-x  no data yet" in text  # its CPU
    assert any("min   0.00 avg   29.5 max   59.0" in line for line in text)
    warn = [line for line, style in lines if style == "warn" and "ingest stops 90" in line]
    assert warn and "[" in warn[0]
    assert any("no data yet for any node: CloudWatch has no mem_used_percent" in line for line in text)
    assert text_report(report(nodes, series), width=100) != lines  # the width is honoured


def test_html_is_one_self_contained_page() -> None:
    nodes = {"0": "i-00000000000000000", "<b>": "i-00000000000000001"}
    series = {("disk", "0"): Series([T0, T0 + 60], [40.0, 85.0])}
    page = html_report(report(nodes, series))
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 1
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert "&lt;b&gt;" in page and "<b>" not in page
    assert "alarm 80" in page and "ingest stops 90" in page and "no data yet" in page
