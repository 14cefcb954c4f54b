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


def test_numpy_ratio_flops_and_rows_columns(records):
    dense = workloads.WORKLOADS_BY_KEY["dense100/b200/f64/adam"]
    same_rows = measure.summarize(dense, 1000, records) + measure.summarize(workloads.WORKLOADS[0],
                                                                            1000, records)
    titles = [t.strip() for t in report.format_table(same_rows).splitlines()[0].split("  ") if t]
    assert "/ numpy" in titles and "GFLOP" in titles and "rows" not in titles  # rows all alike
    row = next(line for line in report.format_table(same_rows).splitlines()
               if line.startswith("dense100/b200/f64/adam") and "pytorch" in line)
    assert "2.00x" in row  # PyTorch's 0.4 s over fastfnn[numpy]'s 0.2 s
    flops = workloads.epoch_flops(dense.sizes, 1000, dense.batch_size)
    assert f"{flops / 1e9:.2f}" in row
    mixed = measure.summarize(dense, 1000, records) + measure.summarize(workloads.WORKLOADS[0],
                                                                        500, records)
    assert report.format_table(mixed).splitlines()[0].split()[3] == "rows"
    no_numpy = [r for r in records if r["name"] != "fastfnn[numpy]"]
    assert "/ numpy" not in report.format_table(measure.summarize(dense, 10, no_numpy))


def test_machine_info_names_the_numba_backend_s_gemm():
    """Once the Numba backend's gemm module is loaded, the header says which gemm its BLAS
    epoch (and the floor) runs: MKL's or the loaded BLAS's."""
    pytest.importorskip("numba")
    from fastfnn.kernels.numba_backend.cblas import describe_gemm
    info = report.machine_info()
    assert info["numba_gemm"] == describe_gemm()
    assert describe_gemm().startswith(("MKL ", "OpenBLAS ", "BLAS "))
