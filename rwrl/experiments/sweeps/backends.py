"""Where a sweep's runs execute: a local process pool, or Ray (one task per run).

Both are generators over the runs' results: each yields a result dict of
``sweep_worker.run_one`` when a run ends, and None about once a second so the
caller can draw progress. Closing the generator (Ctrl-C, an error in the
caller) stops the runs in flight; each resumes from its last checkpoint on
the next ``rwrl sweep``.

Local: ``concurrent.futures.ProcessPoolExecutor`` of K spawned processes
(not forked: the parent has JAX loaded). Each process is pinned to its share
of this process's cores (``os.sched_setaffinity``, where the OS has it) and
sets the thread variables of ``sweep_worker.worker_environment`` before JAX
loads. Workers ignore SIGINT (a terminal's Ctrl-C reaches the whole process
group; the parent alone decides) and stop on SIGTERM as on Ctrl-C; a worker
whose parent died (SIGKILL) exits within a second, so no orphan holds a run.

Ray: ``ray.init()`` on this machine (``num_cpus`` = workers x threads) or
``ray.init(address=...)`` to join a cluster; every run is one task with
``num_cpus=threads`` and ``max_retries``: a task whose worker is lost (killed,
crashed; on a cluster, also with another node) is retried by Ray, and the
retry resumes the run from its checkpoint (the run directory must be on a
file system every node shares). When Ray itself goes (this machine's node is lost or marked dead, the cluster stops,
``ray.shutdown()`` elsewhere in the process), the generator raises
``ClusterLostError``, where Ray's own calls would end the process with
``SystemExit(0)`` (exit status 0) or start a fresh, empty Ray.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import signal
import threading
from typing import Any, Iterator, Sequence

from rwrl.experiments.sweeps.worker import run_one, worker_environment

#: retries of a Ray task whose worker or node was lost (not of a run that raised).
RAY_MAX_RETRIES = 3
_POLL_S = 1.0


class ClusterLostError(RuntimeError):
    """Ray stopped under the sweep (its cluster, or this machine's node, is gone).

    The runs keep their last checkpoints: the next ``rwrl sweep`` resumes them.
    """


def core_groups(workers: int) -> list[list[int]]:
    """Split this process's cores into ``workers`` groups (round-robin when fewer cores)."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        list(range(os.cpu_count() or 1))
    share = max(1, len(cores) // workers)
    if len(cores) >= workers:
        return [cores[i * share:(i + 1) * share] for i in range(workers)]
    return [[cores[i % len(cores)]] for i in range(workers)]


def threads_per_worker(workers: int) -> int:
    return len(core_groups(workers)[0])


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _watch_parent(parent: int) -> None:
    """Exit when the parent dies: the runs' files are atomic, a resume continues them."""
    while True:
        threading.Event().wait(_POLL_S)
        if os.getppid() != parent:
            os._exit(70)


def _init_local_worker(slots: Any, threads: int, parent: int) -> None:
    os.environ.update(worker_environment(threads))
    cores = slots.get()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _failed(task: dict[str, Any], why: str) -> dict[str, Any]:
    return {"run_id": task["run_id"], "status": "failed", "error": why}


def local_results(tasks: Sequence[dict[str, Any]], workers: int,
                  threads: int | None = None) -> Iterator[dict | None]:
    """Run ``tasks`` on a pool of ``workers`` processes; yield results as they end.

    Args:
      threads: cores per worker (default: this process's cores / workers).
    """
    context = multiprocessing.get_context("spawn")
    groups = core_groups(workers)
    if threads is not None:
        groups = [group[:threads] for group in groups]
    slots = context.Queue()
    for group in groups:
        slots.put(group)
    pool = futures.ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_local_worker,
        initargs=(slots, len(groups[0]), os.getpid()))
    submitted = {pool.submit(run_one, task): task for task in tasks}
    pending = set(submitted)
    try:
        while pending:
            done, pending = futures.wait(pending, timeout=_POLL_S,
                                         return_when=futures.FIRST_COMPLETED)
            for future in done:
                try:
                    yield future.result()
                except futures.process.BrokenProcessPool:
                    yield _failed(submitted[future], "its worker process died (killed or "
                                  "crashed); the next `rwrl sweep` resumes it")
            if not done:
                yield None
    finally:
        _stop_pool(pool, pending)


def _stop_pool(pool: futures.ProcessPoolExecutor, pending: set) -> None:
    for future in pending:
        future.cancel()
    if pending:  # stop the runs in flight; each keeps its last checkpoint
        for child in multiprocessing.active_children():
            try:
                os.kill(child.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    pool.shutdown(wait=True, cancel_futures=True)


def ray_results(tasks: Sequence[dict[str, Any]], workers: int, threads: int,
                address: str | None = None) -> Iterator[dict | None]:
    """Run ``tasks`` as Ray tasks; yield results as they end.

    Args:
      workers: runs at once on this machine (``ray.init(num_cpus=workers * threads)``);
        ignored with ``address`` (the cluster's resources decide).
      threads: CPUs each run declares (``num_cpus``) and its engine uses.
      address: a Ray cluster to join (``ray://host:10001``, ``auto``); None: a local Ray.
    """
    import ray
    started = not ray.is_initialized()
    if started:
        runtime_env = {"env_vars": {**worker_environment(threads), **_passed_env()}}
        if address is None:
            ray.init(num_cpus=workers * threads, runtime_env=runtime_env,
                     include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
    remote = ray.remote(num_cpus=threads, max_retries=RAY_MAX_RETRIES)(run_one)
    refs = {remote.remote(task): task for task in tasks}
    pending = list(refs)
    try:
        while pending:
            done, pending = _ray_call(ray, ray.wait, pending, num_returns=1, timeout=_POLL_S)
            for ref in done:
                try:
                    yield _ray_call(ray, ray.get, ref)
                except ray.exceptions.RayError as err:  # lost more than RAY_MAX_RETRIES times
                    yield _failed(refs[ref], _first_line(err))
            if not done:
                yield None
    finally:
        if ray.is_initialized():  # not after a loss that shut it down
            for ref in pending:
                ray.cancel(ref)
            if started:
                ray.shutdown()


def _first_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {(str(err).splitlines() or [''])[0]}"


def _ray_call(ray: Any, api: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``ray.wait`` or ``ray.get``; raise ``ClusterLostError`` when Ray is gone.

    Ray is gone when it is no longer initialized (a call would start a new,
    empty Ray), when the call ends in Ray's ``SystemExit`` (this process's core
    worker shut down, e.g. by ``ray.shutdown()`` in another thread) or in an
    error of this node or of Ray itself rather than of one task
    (``LocalRayletDiedError``: this machine's node died or was marked dead).
    """
    lost = (ray.exceptions.LocalRayletDiedError, ray.exceptions.NodeDiedError,
            ray.exceptions.RaySystemError)
    if not ray.is_initialized():
        raise _cluster_lost("Ray was shut down")
    try:
        return api(*args, **kwargs)
    except SystemExit as err:
        if not hasattr(err, "ray_terminate_msg"):  # a signal's exit (SIGTERM), not Ray's
            raise
        raise _cluster_lost(f"Ray ended this process's connection: {err.ray_terminate_msg}") from err
    except lost as err:
        raise _cluster_lost(_first_line(err)) from err


def _cluster_lost(why: str) -> ClusterLostError:
    return ClusterLostError(f"the Ray cluster was lost during the sweep ({why}); every run keeps "
                            f"its last checkpoint: run the sweep again (on a live cluster) to continue")


def _passed_env() -> dict[str, str]:
    """The driver's variables a local Ray worker needs too (where rwrl is imported from)."""
    return {k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}


__all__ = ["RAY_MAX_RETRIES", "ClusterLostError", "core_groups", "local_results", "ray_results",
           "threads_per_worker"]
