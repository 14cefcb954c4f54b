"""Reporting: the table of results (text or Markdown), warm-up totals and the machine they ran on."""

from __future__ import annotations

import os
import platform
import sys

import numpy as np

from fastfnn._version import __version__


def warmup_overhead(results):
    """Per variant: the sum over workloads of (first epoch - median epoch), floored at 0 each."""
    extra = {}
    for r in results:
        extra[r["variant"]] = extra.get(r["variant"], 0.0) + max(0.0, r["first_epoch_s"] - r["median_s"])
    return extra


TABLE_COLUMNS = (
    ("workload", "workload", "<"),
    ("variant", "variant", "<"),
    ("path", "path", "<"),
    ("rows", "rows", ">"),
    ("median_s", "s/epoch", ">"),
    ("min_s", "min s", ">"),
    ("first_epoch_s", "1st epoch s", ">"),
    ("ratio_to_numpy", "/ numpy", ">"),
    ("ratio_to_torch", "/ torch", ">"),
    ("ratio_to_torch_cuda", "/ torch GPU", ">"),
    ("ratio_to_floor", "/ floor", ">"),
    ("ratio_to_bound", "/ bound", ">"),
    ("gemm_flops", "GFLOP", ">"),
    ("gflops", "GFLOP/s", ">"),
)


def _cell(key, value):
    if value is None:
        return "-"
    if key in ("median_s", "min_s", "first_epoch_s"):
        return f"{value:.4f}" if value < 10 else f"{value:.2f}"
    if key.startswith("ratio"):
        return f"{value:.2f}x"
    if key == "gflops":
        return f"{value:.2f}"
    if key == "gemm_flops":
        return f"{value / 1e9:.2f}"
    return str(value)


#: Columns shown only when some record has a value (PyTorch CUDA runs only where there is a GPU;
#: "/ numpy" needs FastFNN's NumPy backend timed).
OPTIONAL_COLUMNS = ("ratio_to_torch_cuda", "ratio_to_numpy")
#: Columns shown only when their values differ between records (else the header line says it).
VARYING_COLUMNS = ("rows",)


def format_table(results, markdown=False):
    """The results (records of :func:`summarize`) as an aligned text table, or a Markdown table."""
    columns = [c for c in TABLE_COLUMNS
               if (c[0] not in OPTIONAL_COLUMNS or any(r.get(c[0]) is not None for r in results))
               and (c[0] not in VARYING_COLUMNS or len({r.get(c[0]) for r in results}) > 1)]
    header = [title for _, title, _ in columns]
    rows = [[_cell(key, r.get(key)) for key, _, _ in columns] for r in results]
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---:" if align == ">" else "---" for _, _, align in columns) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.ljust(w) if align == "<" else c.rjust(w)
                         for c, w, (_, _, align) in zip(cells, widths, columns)).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    previous = None
    for r, row in zip(results, rows):
        if previous is not None and r.get("workload") != previous:
            out.append("")
        previous = r.get("workload")
        out.append(line(row))
    return "\n".join(out)


def machine_info():
    """CPU, cores, BLAS, versions: what a reader of the numbers needs to know (strings)."""
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "platform": platform.platform(), "cpus": str(os.cpu_count())}
    try:
        info["cpus_usable"] = str(len(os.sched_getaffinity(0)))
    except AttributeError:
        pass
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for text in f:
                if text.startswith("model name"):
                    info["cpu"] = text.split(":", 1)[1].strip()
                    break
    except OSError:
        info["cpu"] = platform.processor() or "unknown"
    info["OPENBLAS_CORETYPE"] = os.environ.get("OPENBLAS_CORETYPE", "(unset)")
    try:
        from threadpoolctl import threadpool_info
        info["blas"] = "; ".join(
            f"{p.get('internal_api')} {p.get('version')} {p.get('architecture', '')} "
            f"{p.get('num_threads')} threads ({os.path.basename(p.get('filepath', ''))})"
            for p in threadpool_info() if p.get("user_api") == "blas") or "unknown"
    except ImportError:
        info["blas"] = "unknown (threadpoolctl not installed)"
    for module in ("numba", "torch"):
        if module in sys.modules:
            info[module] = getattr(sys.modules[module], "__version__", "?")
    if "numba" in sys.modules:
        config = sys.modules["numba"].config
        info["numba_threads"] = f"{config.NUMBA_NUM_THREADS} ({config.THREADING_LAYER} layer)"
    cblas = sys.modules.get("fastfnn.kernels.numba_backend.cblas")
    if cblas is not None:  # the gemm of the Numba backend's BLAS epoch (and of the floor)
        info["numba_gemm"] = cblas.describe_gemm()
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch_blas"] = "MKL" if torch.backends.mkl.is_available() else "not MKL"
        info["torch_threads"] = str(torch.get_num_threads())
    info["fastfnn"] = __version__
    return info
