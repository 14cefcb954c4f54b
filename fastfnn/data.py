"""Transitional alias: MNIST moved to :mod:`fastfnn.datasets` and the IDX codec to :mod:`fastfnn.io.idx`.

Kept only while fastfnn/cli.py and tests/test_cli.py still import ``fastfnn.data``; delete it once they
import from the new homes.
"""

from fastfnn.datasets import MNIST_FILES, MNIST_MD5, load_mnist
from fastfnn.io.idx import read_idx, write_idx

__all__ = ["MNIST_FILES", "MNIST_MD5", "load_mnist", "read_idx", "write_idx"]
