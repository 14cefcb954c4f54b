"""The compute floor's package itself: from a checkout's root it refuses the name kernels."""

from __future__ import annotations

import subprocess
import sys

from .conftest import REPO


def test_the_checkout_folder_refuses_the_name_kernels():
    # From the repository root "import kernels" finds the kernels/ folder; kernels compiled under
    # that name would share Numba's cache files with fastfnn.kernels and break its later loads.
    proc = subprocess.run([sys.executable, "-c", "import kernels.numba_backend.optimizer"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "import it as fastfnn.kernels, not as 'kernels'" in proc.stderr, proc.stderr[-2000:]
    proc = subprocess.run([sys.executable, "-c", "import fastfnn.kernels.numba_backend.optimizer"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
