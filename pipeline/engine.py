"""The scale-out engine, in one place: a ``dask.distributed`` cluster that runs the per-item work of a stage
(ingest: parse one file; analyze: analyse one athlete) while this process stays the single warehouse writer.

``--cluster ADDRESS`` connects to a running scheduler (``tcp://host:8786``; started with ``dask scheduler``
and ``dask worker ADDRESS`` on each machine, see docs/scaling.md); ``--cluster local:N`` starts a
LocalCluster of N single-threaded worker processes on this machine for the duration of the command.

:meth:`Engine.stream` is the only operation the stages use: apply a pure, picklable function to each item,
with at most ``inflight`` items sent out at a time (memory stays bounded whatever the number of items), and
yield the results in item order (so a cluster run writes in the same order as a local one and the tables
come out identical). An exception raised by the function on a worker is raised here, like a local call.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from dask.distributed import Client, LocalCluster

from pipeline.errors import PipelineError

LOCAL_PREFIX = "local:"
# Items in flight per worker: enough to keep each busy while results travel back, few enough to bound memory.
INFLIGHT_PER_WORKER = 2


def parse_cluster(spec: str) -> tuple[str | None, int | None]:
    """``"local:N"`` -> (None, N); a scheduler address -> (address, None). Raises PipelineError otherwise."""
    spec = spec.strip()
    if spec.startswith(LOCAL_PREFIX):
        n = spec[len(LOCAL_PREFIX):]
        if not n.isdigit() or int(n) < 1:
            raise PipelineError(f"--cluster {spec!r}: local:N needs a worker count N >= 1, e.g. local:2")
        return None, int(n)
    if not spec or " " in spec:
        raise PipelineError(f"--cluster {spec!r}: give a scheduler address (tcp://host:8786) or local:N")
    return (spec if "://" in spec else f"tcp://{spec}"), None


class Engine:
    """A connected dask client and the stream operation the stages use."""

    def __init__(self, client: Client, description: str):
        self.client = client
        self.description = description

    @property
    def n_workers(self) -> int:
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def stream(self, fn: Callable[[Any], Any], items: Iterable[Any], inflight: int | None = None) -> Iterator[Any]:
        """``fn(item)`` for each item on the cluster, results in item order, at most ``inflight`` out at once."""
        limit = inflight or INFLIGHT_PER_WORKER * self.n_workers
        pending: deque = deque()
        it = iter(items)

        def submit(item: Any) -> None:
            # scattered first: large frames travel once, directly to a worker, not inside the task graph
            # (wrapped in a list: a list or dict item is then one object, not scattered element by element)
            arg = self.client.scatter([item], direct=True)[0]
            pending.append((arg, self.client.submit(fn, arg, pure=False)))

        for item in it:
            submit(item)
            if len(pending) >= limit:
                break
        while pending:
            arg, future = pending.popleft()
            try:
                result = future.result()
            finally:
                future.release()
                arg.release()
            for nxt in it:
                submit(nxt)
                break
            yield result

    def run_on_workers(self, fn: Callable[[], Any]) -> None:
        """``fn()`` once in every worker process (housekeeping, e.g. closing files a stage kept open)."""
        self.client.run(fn)

    def worker_peak_memory_mb(self) -> float | None:
        """The largest worker's peak resident memory so far (MB), where the platform reports it."""
        peaks = self.client.run(_peak_rss_mb)
        values = [v for v in peaks.values() if v is not None]
        return max(values) if values else None


def _peak_rss_mb() -> float | None:
    try:
        import resource  # POSIX only
    except ImportError:
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextlib.contextmanager
def open_engine(spec: str | None) -> Iterator[Engine | None]:
    """The engine named by ``--cluster`` (None without one: the stages run locally), closed afterwards."""
    if not spec:
        yield None
        return
    address, n_local = parse_cluster(spec)
    cluster = None
    try:
        if n_local is not None:
            # processes, one thread each: the analysis is CPU-bound Python/pandas (the GIL)
            cluster = LocalCluster(n_workers=n_local, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=40)
            client = Client(cluster)
            description = f"local cluster of {n_local} worker process(es)"
        else:
            client = Client(address, timeout=os.environ.get("PIPELINE_CLUSTER_TIMEOUT", "20s"))
            description = f"cluster at {address}"
    except OSError as e:
        if cluster is not None:
            cluster.close()
        raise PipelineError(f"--cluster {spec}: cannot connect to the scheduler ({e})") from e
    try:
        yield Engine(client, description)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
