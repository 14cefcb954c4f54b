"""``python -m fastfnn.bench [options]``: the same as ``fastfnn bench``."""

import sys

from fastfnn.bench.command import main

sys.exit(main())
