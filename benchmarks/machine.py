"""What a benchmark ran on: CPU, cores, library versions, BLAS and its core type, the thread
settings in the environment, and the load average before and after (a speed figure means
little without them). Every benchmark prints these lines above its table and puts them in its
JSON.

    python benchmarks/machine.py          # the header alone
"""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from rnnlab.training.machine import cpu_model, load_average

# thread and kernel settings that change the figures, reported as set (or "unset")
ENVIRONMENT = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_L2_SIZE",
    "NUMBA_NUM_THREADS",
    "NUMBA_THREADING_LAYER",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "XLA_FLAGS",
)
IDLE_LOAD = 0.5  # a 1-minute load average above this at the start: the machine is not idle
SETTLE_SECONDS = 1.0  # settle() waits at most this long


def settle(limit: float = SETTLE_SECONDS) -> float:
    """Wait (untimed) until no other thread of this process is running, at most ``limit``
    seconds; return the seconds waited. Threads linger busy after a contender's epoch:
    OpenBLAS's workers spin about 0.1-0.2 s after a NumPy product, PyTorch's and numba's
    OpenMP workers a few ms. Without this the next contender met a core still taken (numba's
    automatic thread count then picked one thread) depending on who ran before it."""
    start = time.perf_counter()
    me = str(threading.get_native_id())
    while time.perf_counter() - start < limit:
        busy = False
        try:
            for tid in os.listdir("/proc/self/task"):
                if tid != me:
                    with open(f"/proc/self/task/{tid}/stat") as f:
                        busy = busy or f.read().rpartition(")")[2].split()[0] == "R"
        except OSError:  # no /proc (not Linux), or a thread that has just ended
            return time.perf_counter() - start
        if not busy:
            break
        time.sleep(0.005)
    return time.perf_counter() - start


def cores() -> dict:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"logical": os.cpu_count(), "usable": usable}


def openblas_runtime() -> dict:
    """The core type and thread count OpenBLAS chose at run time (what ``OPENBLAS_CORETYPE``
    changes), asked through ctypes from the OpenBLAS library NumPy loaded, as threadpoolctl does;
    {} when there is none (another BLAS, or not Linux)."""
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return {}
    libs = sorted({ln.split()[-1] for ln in maps if "openblas" in ln.lower() and ".so" in ln})
    for path in libs:
        lib = ctypes.CDLL(path)
        for prefix, suffix in (
            ("scipy_openblas_", "64_"),
            ("scipy_openblas_", ""),
            ("openblas_", ""),
        ):
            try:
                corename = lib[f"{prefix}get_corename{suffix}"]
                threads = lib[f"{prefix}get_num_threads{suffix}"]
            except AttributeError:
                continue
            corename.restype = ctypes.c_char_p
            return {
                "library": Path(path).name,
                "corename": corename().decode(),
                "threads": threads(),
            }
    return {}


def blas() -> dict:
    """NumPy's BLAS: threadpoolctl's view when it is installed, else NumPy's build config plus
    OpenBLAS's run-time core type."""
    try:
        from threadpoolctl import threadpool_info

        return {"threadpoolctl": threadpool_info()}
    except ImportError:
        pass
    info: dict = {}
    try:
        built = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info = {k: built.get(k) for k in ("name", "version", "openblas configuration")}
    except (TypeError, KeyError):
        pass
    info.update(openblas_runtime())
    return info


def versions(with_torch: bool) -> dict:
    import numba

    out = {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__}
    out["numba_threads"] = numba.config.NUMBA_NUM_THREADS
    if with_torch:
        import torch

        out["torch"] = torch.__version__
        out["torch_threads_default"] = torch.get_num_threads()
    return out


def git_commit() -> str | None:
    """The rnnlab commit measured, with "+dirty" when the tree has changes."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return None
    return (head + ("+dirty" if dirty else "")) or None


def describe(with_torch: bool, jax_pool=None) -> dict:
    """The machine and settings, with the date and the load average now (call :func:`finish` at
    the end). ``jax_pool`` (benchmarks/jaxworker.py): its workers' JAX, jaxlib and optax
    versions and XLA flags are added."""
    v = versions(with_torch)
    if jax_pool is not None:
        v["jax"] = jax_pool.versions()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu": cpu_model(),
        "cores": cores(),
        "platform": platform.platform(),
        "versions": v,
        "rnnlab_commit": git_commit(),
        "blas": blas(),
        "environment": {name: os.environ.get(name) for name in ENVIRONMENT},
        "load_average_start": load_average(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }


def finish(info: dict) -> dict:
    """Add the load average at the end, and numba's threading layer if a parallel kernel ran."""
    info["load_average_end"] = load_average()
    try:
        import numba

        info["versions"]["numba_threading_layer"] = numba.threading_layer()
    except (ImportError, ValueError):  # ValueError: no parallel kernel has run
        pass
    return info


def idle_warning(info: dict) -> str | None:
    load = info.get("load_average_start")
    if load and load[0] > IDLE_LOAD:
        return (
            f"WARNING: 1-minute load average {load[0]} > {IDLE_LOAD} at the start: the machine "
            f"is not idle, these figures are measured under load"
        )
    return None


def header_lines(info: dict) -> list[str]:
    """The header, one setting per line, as printed above every table."""
    v, c, b = info["versions"], info["cores"], info["blas"]
    env = ", ".join(
        f"{k}={v if v is not None else 'unset'}" for k, v in info["environment"].items()
    )
    if "threadpoolctl" in b:
        blas_line = "; ".join(
            f"{p.get('internal_api')} {p.get('version')} {p.get('architecture', '')} "
            f"threads={p.get('num_threads')}"
            for p in b["threadpoolctl"]
        )
    else:
        blas_line = (
            f"{b.get('name')} {b.get('version')}, run-time core {b.get('corename', '?')}, "
            f"{b.get('threads', '?')} threads"
        )
    lines = [
        f"date: {info.get('date', '?')}",
        f"machine: {info['cpu']}, {c['logical']} logical cores ({c['usable']} usable), "
        f"{info['platform']}",
        f"versions: python {v['python']}, numpy {v['numpy']}, numba {v['numba']} "
        f"(NUMBA_NUM_THREADS {v['numba_threads']}"
        + (f", layer {v['numba_threading_layer']}" if "numba_threading_layer" in v else "")
        + ")"
        + (f", torch {v['torch']}" if "torch" in v else "")
        + (
            f", jax {v['jax']['jax']} (jaxlib {v['jax']['jaxlib']}, optax {v['jax']['optax']})"
            if "jax" in v
            else ""
        )
        + f"; rnnlab {info['rnnlab_commit']}",
        f"blas: {blas_line}",
        f"environment: {env}",
        f"load average (1, 5, 15 min): start {info['load_average_start']}"
        + (f", end {info['load_average_end']}" if "load_average_end" in info else ""),
        f"command: {info['command']}",
    ]
    warning = idle_warning(info)
    return lines + ([warning] if warning else [])


if __name__ == "__main__":
    print("\n".join(header_lines(finish(describe(with_torch=False)))))
