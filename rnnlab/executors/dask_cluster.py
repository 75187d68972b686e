"""Runs on a Dask distributed cluster: an existing one (``--dask tcp://host:8786``), or a local
cluster of worker processes on the loopback interface (``--dask local``).

Needs the optional extra ``rnnlab[dask]``. Every worker needs rnnlab and the plugins installed
and must see the sweep directory at the same path (a shared file system), because workers write
each run's results there themselves. A worker that dies has its run moved to another worker by
the scheduler; after ``distributed.scheduler.allowed-failures`` deaths (set to ``retries`` for a
local cluster; a remote scheduler keeps its own setting) the run is reported failed.
Dask's nanny pins OMP/MKL/OpenBLAS threads to one in its workers; a local cluster also pins numba.
"""

from __future__ import annotations

import importlib.util
import uuid
from collections import Counter
from collections.abc import Sized

from ..errors import RnnlabError
from .base import DEFAULT_RETRIES, THREAD_ENV, Executor, RunResult
from .local import available_cores


def local_cluster(workers: int, retries: int = DEFAULT_RETRIES):
    """A Dask cluster of ``workers`` single-threaded worker processes on the loopback
    interface, with thread pools pinned to one and ``retries`` reruns of a run whose worker
    dies."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": retries}):
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            env=dict(THREAD_ENV),
        )


def _announced(fn, job, topic: str):
    """Runs on a worker: tell the client the run began, then run it."""
    from distributed import get_worker

    get_worker().log_event(topic, {"run": job.run})
    return fn(job)


class DaskExecutor(Executor):
    name = "dask"

    def __init__(
        self, address: str = "local", workers: int | None = None, retries: int = DEFAULT_RETRIES
    ):
        if importlib.util.find_spec("distributed") is None:  # say so before anything starts
            raise RnnlabError("--dask needs Dask distributed: pip install 'rnnlab[dask]'")
        self.address = address
        self.workers = workers
        self.retries = retries

    def describe(self) -> str:
        if self.address == "local":
            return f"dask local cluster ({self.workers or available_cores()} workers)"
        return f"dask cluster at {self.address}"

    def _connect(self):
        from distributed import Client

        if self.address != "local":
            try:
                return Client(self.address, timeout="10s"), None
            except (OSError, TimeoutError) as exc:
                raise RnnlabError(
                    f"cannot reach the Dask scheduler at {self.address}: {exc}"
                ) from None
        cluster = local_cluster(self.workers or available_cores(), self.retries)
        return Client(cluster), cluster

    def run(self, fn, jobs, started):
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        client, cluster = self._connect()
        by_run = {}
        starts = Counter()

        def on_event(event):  # called on the client's event loop thread
            run = event[1]["run"]
            starts[run] += 1
            started(by_run[run])

        topic = f"rnnlab-sweep-{uuid.uuid4().hex}"
        futures = {}
        pending = as_completed()
        source = iter(jobs)

        def submit() -> bool:
            job = next(source, None)
            if job is None:
                return False
            by_run[job.run] = job
            future = client.submit(
                _announced, fn, job, topic, pure=False, key=f"{job.run}-{uuid.uuid4().hex[:8]}"
            )
            futures[future] = job
            pending.add(future)
            return True

        try:
            client.subscribe_topic(topic, on_event)
            # a list goes to the scheduler at once; a stream (an adaptive search makes each
            # job from the results so far) one job per worker thread, the next as one ends
            slots = (
                len(jobs) if isinstance(jobs, Sized) else max(1, sum(client.nthreads().values()))
            )
            while slots > 0 and submit():
                slots -= 1
            for future in pending:
                job = futures[future]
                try:
                    result = future.result()
                except KilledWorker:
                    result = RunResult.died(job, max(starts[job.run], 1), "Dask worker lost")
                else:
                    result.attempts = max(starts[job.run], 1)
                yield result
                submit()
        finally:
            client.cancel(list(futures))
            client.unsubscribe_topic(topic)
            client.close()
            if cluster is not None:
                cluster.close()
