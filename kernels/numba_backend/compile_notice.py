"""One line on stderr when Numba is about to compile: what, about how long, and where it is cached.

Numba compiles a kernel the first time a signature runs and keeps the result in its disk cache; a
cache miss is the only time a user waits for it, tens of seconds for the fused epoch, with nothing on
screen. :func:`compile_notice` listens for Numba's ``numba:compile`` event, which fires only when a
compile really starts (after the disk cache was asked and had nothing), and prints one line the first
time it fires inside the ``with`` block. Set ``FASTFNN_COMPILE_NOTICE=0`` to silence it.
"""

from __future__ import annotations

import contextlib
import os
import sys

try:
    from numba.core.event import Listener, install_listener
except Exception:  # a broken numba: the package still imports, and jit.IMPORT_ERROR says why
    Listener, install_listener = object, None


class _FirstCompile(Listener):
    """Prints ``line`` at the first compile start it hears; counts every compile it hears."""

    def __init__(self, line, stream, quiet):
        self.line, self.stream, self.quiet, self.compiles = line, stream, quiet, 0

    def on_start(self, ev):
        self.compiles += 1
        if self.compiles == 1 and not self.quiet:
            print(self.line, file=self.stream or sys.stderr, flush=True)

    def on_end(self, ev):
        pass


@contextlib.contextmanager
def compile_notice(what: str, seconds: float, cache: str, stream=None):
    """Within the block, say once that ``what`` is compiling (about ``seconds``, cached in ``cache``).

    Yields the listener; its ``compiles`` counts the compiles that started inside the block.
    """
    line = (f"fastfnn: compiling {what} with Numba (about {seconds:.0f} s, once; cached in {cache}; "
            "`fastfnn warmup` compiles ahead of time)")
    listener = _FirstCompile(line, stream, quiet=os.environ.get("FASTFNN_COMPILE_NOTICE") == "0")
    if install_listener is None:  # nothing compiles without numba
        yield listener
        return
    with install_listener("numba:compile", listener):
        yield listener
