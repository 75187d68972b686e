"""JAX contenders run in child processes, one per thread setting, so that XLA's threads are set
before JAX starts (``XLA_FLAGS`` is read once per process) and the parent never imports JAX.

- ``jax-step`` / ``jax-epoch``: XLA's default threads (a pool sized by the usable cores);
- ``jax-step-1t`` / ``jax-epoch-1t``: one thread. The usual recipe, ``XLA_FLAGS`` =
  ``--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1``, no longer does it
  (jax 0.10: three threads still share the work). What does: XLA sizes its CPU thread pool
  from the cores the process may use when the backend starts, so the child starts JAX's CPU
  backend allowed one core only, then gives every core back (the OS may still move the one
  working thread to whichever core is free). Each epoch counts the threads that did the work
  (:func:`working_threads`), shown in the contender's path.

"step" is the minibatch step under ``jit`` called from Python, "epoch" the whole epoch under
``jit`` (benchmarks/jaxmodel.py). A child holds every case's models; the parent sends it the
case's data and initial parameters once (the same arrays the other contenders train from) and
then, per timed epoch, the order of the sequences. The child waits until its own threads are
idle (``machine.settle``), times the epoch there (``block_until_ready`` at its end) and answers
with the wall-clock seconds and the CPU seconds of the epoch (how many cores it kept busy).
Compilation happens ahead of time when a case is set up and is reported apart.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import traceback
from statistics import median

THREAD_SETTINGS = (None, 1)  # XLA's default, one thread
WORKING_SHARE = 0.05  # a thread that used this share of an epoch's CPU time did its work


def thread_ticks() -> dict[str, int]:
    """CPU clock ticks (user + system) of every thread of this process; {} without /proc."""
    out = {}
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            out[tid] = int(fields[11]) + int(fields[12])
    except OSError:
        return {}
    return out


def working_threads(before: dict[str, int], after: dict[str, int]) -> int | None:
    """How many threads used at least WORKING_SHARE of the CPU time between two
    :func:`thread_ticks`; None when too little was measured (under 20 ticks)."""
    used = [after[t] - before.get(t, 0) for t in after]
    total = sum(used)
    if total < 20:
        return None
    return sum(u >= WORKING_SHARE * total for u in used)


def start_jax(threads: int | None) -> None:
    """Import JAX and start its CPU backend with ``threads`` (None: XLA's default; 1: one
    thread in XLA's pool, see the module's text)."""
    if threads == 1 and hasattr(os, "sched_setaffinity"):
        usable = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(usable)})
        try:
            import jax

            jax.devices()  # the CPU client and its thread pool, sized now
        finally:
            os.sched_setaffinity(0, usable)
    elif threads is not None:
        raise ValueError(f"JAX threads: None or 1 (on Linux), not {threads}")


def jax_available() -> bool:
    try:
        import jax  # noqa: F401
        import optax  # noqa: F401
    except ImportError:
        return False
    return True


def serve(conn, threads: int | None) -> None:
    """The child's loop: ``("build", key, problem)``, ``("epoch", key, variant, order)``,
    ``("params", key, variant)``, ``("versions",)``, ``("stop",)``."""
    start_jax(threads)
    import jaxmodel
    import machine

    trainers: dict = {}
    while True:
        message = conn.recv()
        try:
            kind = message[0]
            if kind == "stop":
                conn.send(("ok", None))
                return
            if kind == "versions":
                import jax
                import jaxlib
                import optax

                reply = {
                    "jax": jax.__version__,
                    "jaxlib": jaxlib.__version__,
                    "optax": optax.__version__,
                    "xla_flags": os.environ.get("XLA_FLAGS"),
                    "one_thread": "XLA's pool sized with one usable core at start",
                    "devices": [str(d) for d in jax.devices()],
                }
            elif kind == "build":
                _, key, problem = message
                problem = dict(
                    problem,
                    spec=jaxmodel.Spec(**problem["spec"]),
                    train=jaxmodel.Training(**problem["train"]),
                )
                reply = {}
                for variant in jaxmodel.VARIANTS:
                    t = jaxmodel.Trainer(**problem, variant=variant)
                    trainers[(key, variant)] = t
                    reply[variant] = t.compile_seconds
            elif kind == "epoch":
                _, key, variant, order = message
                trainer = trainers[(key, variant)]
                machine.settle()
                ticks, cpu0, t0 = thread_ticks(), time.process_time(), time.perf_counter()
                trainer.epoch(order)
                seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                reply = (seconds, cpu, working_threads(ticks, thread_ticks()))
            elif kind == "params":
                reply = trainers[(message[1], message[2])].numpy_params()
            else:
                raise ValueError(f"unknown message {kind!r}")
            conn.send(("ok", reply))
        except Exception:
            conn.send(("error", traceback.format_exc()))


class Worker:
    """A child process running :func:`serve` with one thread setting."""

    def __init__(self, threads: int | None):
        self.threads = threads
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=serve, args=(child, threads), daemon=True)
        self.process.start()
        child.close()

    def ask(self, *message):
        self.conn.send(message)
        status, reply = self.conn.recv()
        if status == "error":
            raise RuntimeError(f"JAX worker ({self.label}) failed:\n{reply}")
        return reply

    @property
    def label(self) -> str:
        return "XLA default threads" if self.threads is None else f"{self.threads} thread"

    @property
    def suffix(self) -> str:
        return "" if self.threads is None else f"-{self.threads}t"

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self.ask("stop")
            except (OSError, EOFError):
                pass
            self.process.join(5)


class JaxContender:
    """One variant of one case in a worker, with ``epoch(order) -> seconds`` as every other
    contender. ``warmup`` is the ahead-of-time compile time (excluded from the epochs)."""

    def __init__(self, worker: Worker, key, variant: str, compile_seconds: float):
        self.worker, self.key, self.variant = worker, key, variant
        self.name = f"jax-{variant}{worker.suffix}"
        self.warmup = self.compile_seconds = compile_seconds
        self.busy: list[float] = []  # cores kept busy per epoch (CPU seconds / wall seconds)
        self.working: list[int] = []  # threads that did the work, per epoch (when measured)

    def epoch(self, order) -> float:
        seconds, cpu, working = self.worker.ask("epoch", self.key, self.variant, order)
        self.busy.append(cpu / seconds if seconds > 0 else 0.0)
        if working is not None:
            self.working.append(working)
        return seconds

    def params(self) -> dict:
        return self.worker.ask("params", self.key, self.variant)

    @property
    def path(self) -> str:
        how = "minibatch step under jit" if self.variant == "step" else "epoch under jit"
        busy = f", {median(self.busy):.2f} cores busy" if self.busy else ""
        if self.working:
            busy += f", {min(self.working)}-{max(self.working)} working thread(s)"
        return f"{how}, {self.worker.label}{busy}, compiled in {self.compile_seconds:.2f} s"


class JaxPool:
    """The workers (started on first use, one per thread setting) and their contenders."""

    def __init__(self, settings=THREAD_SETTINGS):
        self.settings, self.workers = settings, []
        self.keys = 0

    def start(self) -> None:
        if not self.workers:
            self.workers = [Worker(t) for t in self.settings]

    def contenders(self, problem: dict) -> list[JaxContender]:
        """Every variant and thread setting of one case (``problem``: jaxmodel.Trainer's
        keyword arguments but ``variant``)."""
        self.start()
        self.keys += 1
        out = []
        for w in self.workers:
            compiled = w.ask("build", self.keys, problem)
            out += [JaxContender(w, self.keys, v, compiled[v]) for v in compiled]
        return out

    def versions(self) -> dict:
        self.start()
        return self.workers[0].ask("versions")

    def stop(self) -> None:
        for w in self.workers:
            w.stop()
        self.workers = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
