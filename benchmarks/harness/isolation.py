"""Where the variants run: all in this process, or each in a worker process of its own (``--isolate``).

:class:`LocalVariants` builds a workload's variants here, one after the other (the seed workloads'
default). :class:`WorkerPool` keeps one worker process per variant name (``fastfnn[numba]``,
``pytorch``, ``floor``, ...) for the whole run, so that no framework's thread pools, JIT state or
allocator share a process with another's, while process start and imports are paid once: the
parent tells each worker to set up workload after workload and to run one timed epoch at a time.
Both hand out :class:`fastfnn.bench.variants.Variant` objects, so :func:`fastfnn.bench.measure.
measure_workload` interleaves and times them alike; a worker times its own epoch with
``time.perf_counter`` and sends back (seconds, mean loss), so the pipe is not in the timing.

Workers are started by multiprocessing's spawn context (a fresh interpreter, nothing inherited but
the environment) and spoken to over a Pipe: the parent sends (command, argument), the worker
answers ("ok", value) or ("error", is an ImportError, repr of the exception). Commands: "setup"
(a workload: build its data and the variant; answers kind, path and the data's source), "epoch"
(answers seconds, loss, path), "info" (the worker's :func:`fastfnn.bench.report.machine_info`),
"close". No orphans: a worker ignores SIGINT (Ctrl-C reaches the whole process group; the parent
decides), exits when the parent's end of the pipe closes and, on Linux, when the parent dies
(PR_SET_PDEATHSIG); :meth:`WorkerPool.close` (the pool's ``with`` exit, on errors and Ctrl-C too)
closes the idle workers and terminates, then kills, the busy or stuck ones. As with any spawned
process, a script (not ``fastfnn bench``) that starts a pool runs it under
``if __name__ == "__main__":``, since each worker imports the script's main module.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys

from fastfnn.bench.variants import Variant, build_variants, make_variant, setup_failure, unsupported

#: Seconds a worker gets to exit after "close" before it is terminated, then killed.
CLOSE_TIMEOUT_S = 5.0
#: Keys of a worker's machine_info that describe its own process (versions and threads).
WORKER_INFO_KEYS = ("numba", "numba_threads", "numba_gemm", "torch", "torch_threads", "torch_blas")


class WorkerError(RuntimeError):
    """An exception raised inside a worker, or the worker's death; its text says which."""

    def __repr__(self):
        return str(self)


class LocalVariants:
    """The variants ``names`` of each workload built in this process, on ``source``'s data."""

    isolated = False

    def __init__(self, names, source, torch_threads):
        self.names, self.source, self.torch_threads = list(names), source, torch_threads

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def variants_for(self, workload, skipped):
        """The variants set up on ``workload`` (see :func:`fastfnn.bench.variants.build_variants`)."""
        return build_variants(workload, self.source.for_workload(workload), self.names,
                              self.torch_threads, skipped)

    def worker_info(self):
        """Nothing: this process's :func:`machine_info` describes the variants' process."""
        return {}


class Worker:
    """One worker process serving the variant ``name`` (see the module docstring)."""

    def __init__(self, name, source, torch_threads):
        context = multiprocessing.get_context("spawn")
        self.name = name
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, name, source, torch_threads),
                                       name=f"fastfnn bench worker {name}", daemon=True)
        self.process.start()
        child.close()
        #: True while a command is under way (an interrupted worker is terminated, not asked)
        self.busy = False

    def alive(self):
        return self.process.is_alive()

    def call(self, command, argument=None):
        """Send one command; return the worker's answer. Raises ImportError or WorkerError."""
        self.busy = True
        try:
            self.conn.send((command, argument))
            reply = self.conn.recv()
        except (EOFError, OSError) as exc:
            self.process.join(timeout=1.0)
            raise WorkerError(f"the worker process of {self.name} died (exit code "
                              f"{self.process.exitcode}) during {command!r}: {exc!r}") from None
        self.busy = False
        if reply[0] == "ok":
            return reply[1]
        _, import_error, text = reply
        raise (ImportError if import_error else WorkerError)(text)

    def close(self):
        """Stop the process: ask it when idle, then terminate and kill whatever is left."""
        if self.process.is_alive() and not self.busy:
            try:
                self.conn.send(("close", None))
            except OSError:
                pass
            self.process.join(timeout=CLOSE_TIMEOUT_S)
        for stop in (self.process.terminate, self.process.kill):
            if not self.process.is_alive():
                break
            stop()
            self.process.join(timeout=CLOSE_TIMEOUT_S)
        self.conn.close()


class RemoteVariant(Variant):
    """A variant living in a worker: its epochs run and are timed there."""

    def __init__(self, worker, setup):
        self.worker = worker
        self.name = worker.name
        self.kind, self.path = setup["kind"], setup["path"]

    def timed_epoch(self):
        seconds, loss, self.path = self.worker.call("epoch")
        return seconds, loss

    def epoch(self):
        """One epoch in the worker, the pipe's round trip included; returns its mean loss."""
        return self.timed_epoch()[1]


class WorkerPool:
    """One :class:`Worker` per variant name for the whole run; use it as a context manager.

    A worker that died is started afresh for the next workload; a variant that cannot run at all
    (PyTorch missing) is not asked again.
    """

    isolated = True

    def __init__(self, names, source, torch_threads):
        self.names, self.source, self.torch_threads = list(names), source, torch_threads
        self.workers = {}
        self.unavailable = set()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def variants_for(self, workload, skipped):
        """The workers' variants set up on ``workload``; failures go to ``skipped`` with why."""
        wanted = []
        for name in self.names:
            reason = unsupported(name, workload)
            if reason:
                skipped[f"{name} on {workload.key}"] = reason
            elif name not in self.unavailable:
                wanted.append(name)
        for name in wanted:  # start every missing worker first: their imports run side by side
            self._worker(name)
        variants = []
        for name in wanted:
            try:
                variants.append(self.setup(name, workload))
            except Exception as exc:  # noqa: BLE001 - report a broken variant, time the others
                if setup_failure(name, workload, exc, skipped):
                    self.unavailable.add(name)
        return variants

    def setup(self, name, workload):
        """The variant ``name`` set up on ``workload`` in its worker (started if needed), as a
        :class:`RemoteVariant`. Raises ImportError or WorkerError as the setup there failed."""
        worker = self._worker(name)
        return RemoteVariant(worker, worker.call("setup", workload))

    def _worker(self, name):
        """``name``'s live worker, started (afresh, when the last one died) if needed."""
        worker = self.workers.get(name)
        if worker is None or not worker.alive():
            if worker is not None:
                worker.close()
            worker = self.workers[name] = Worker(name, self.source, self.torch_threads)
        return worker

    def worker_info(self):
        """Versions and thread counts as the live workers see them (machine_info keys)."""
        info = {}
        for worker in self.workers.values():
            if worker.alive():
                try:
                    facts = worker.call("info")
                except (ImportError, WorkerError):
                    continue
                info.update({key: facts[key] for key in WORKER_INFO_KEYS if key in facts})
        return info

    def close(self):
        """Stop every worker (see :meth:`Worker.close`)."""
        for worker in self.workers.values():
            worker.close()
        self.workers.clear()


def _die_with_parent():
    """On Linux, have the kernel send this process SIGTERM when its parent dies."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # then the closed pipe ends the worker


def serve(conn, name, source, torch_threads):
    """A worker's loop (the spawned process's target): answer commands until "close" or EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    variant = None
    while True:
        try:
            command, argument = conn.recv()
        except (EOFError, OSError):
            return
        if command == "close":
            return
        try:
            if command == "setup":
                variant = None  # free the previous workload's arrays before building the next
                data = source.for_workload(argument)
                variant = make_variant(name, argument, data, torch_threads)
                reply = {"kind": variant.kind, "path": variant.path, "source": data.source}
            elif command == "epoch":
                if variant is None:
                    raise RuntimeError("no workload set up")
                seconds, loss = variant.timed_epoch()
                reply = (seconds, loss, variant.path)
            elif command == "info":
                from fastfnn.bench.report import machine_info
                reply = machine_info()
            else:
                raise ValueError(f"unknown command {command!r}")
        except Exception as exc:  # noqa: BLE001 - the parent reports it and goes on
            conn.send(("error", isinstance(exc, ImportError), repr(exc)))
            continue
        conn.send(("ok", reply))
