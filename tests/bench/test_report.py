"""fastfnn.bench.report: the text and Markdown tables and the warm-up totals."""

import pytest

from fastfnn.bench import measure, report, workloads


def test_format_table_text_and_markdown(records):
    wl1, wl2 = workloads.WORKLOADS[0], workloads.WORKLOADS[2]
    no_torch = [r for r in records if r["name"] != "pytorch"]
    results = measure.summarize(wl1, 1000, records) + measure.summarize(wl2, 1000, no_torch)
    text = report.format_table(results)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["workload", "variant", "path"]
    assert "GFLOP/s" in lines[0] and "/ torch" in lines[0]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert "" in lines  # a blank line between workloads
    row = next(line for line in lines if line.startswith(wl1.key) and "fastfnn[numpy]" in line)
    assert "0.2000" in row and "0.50x" in row and "4.00x" in row
    row = next(line for line in lines if line.startswith(wl2.key) and "fastfnn[numpy]" in line)
    assert " - " in row  # no PyTorch timing for this workload
    md = report.format_table(results, markdown=True).splitlines()
    assert md[0].startswith("| workload | variant |") and md[1].startswith("|---|---|")
    assert len(md) == 2 + len(results)


def test_warmup_overhead_sums_first_minus_median(records):
    results = measure.summarize(workloads.WORKLOADS[0], 100, records)
    extra = report.warmup_overhead(results)
    assert extra["fastfnn[numpy]"] == pytest.approx(0.3)
    assert extra["floor"] == pytest.approx(0.05)
