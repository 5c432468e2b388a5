"""Executors: a local process pool (default) and Ray. Both stream results back as scenarios finish.

Each takes the worker tasks and a callback `on_result(result)`; a task whose worker process dies is retried
up to `retries` times and then recorded as an error, never lost.
"""

import multiprocessing
import os
import re
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from costmodels.errors import SolverUnavailableError
from planner.sweep.worker import run_scenario

OnResult = Callable[[dict], None]


def died(task: dict, message: str) -> dict:
    """The result record of a task that never returned."""
    return {"digest": task["digest"], "index": task["index"], "status": "error", "exit_code": 1, "error": message,
            "plan": None, "wall_s": 0.0}


def _plain(text: str) -> str:
    """Ray's error text without terminal colour codes, cut to its last 2,000 characters."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)[-2000:]


def default_workers() -> int:
    """One worker per CPU this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def run_local(tasks: list[dict], on_result: OnResult, *, workers: int, retries: int = 2,
              run: Callable[[dict], dict] = run_scenario) -> None:
    """Run tasks on a pool of `workers` fresh ('spawn') processes; a pool broken by a dying worker is rebuilt
    and its unfinished tasks are resubmitted (each counted as one attempt)."""
    pending = {t["digest"]: t for t in tasks}
    attempts = dict.fromkeys(pending, 0)
    context = multiprocessing.get_context("spawn")
    while pending:
        with ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=context) as pool:
            futures = {pool.submit(run, t): d for d, t in pending.items()}
            while futures:
                finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in finished:
                    digest = futures.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        attempts[digest] += 1
                        if attempts[digest] > retries:
                            on_result(died(pending.pop(digest), f"worker process died {attempts[digest]} times"))
                        continue
                    except Exception as exc:  # the task function itself raised: record it, carry on
                        result = died(pending[digest], f"{type(exc).__name__}: {exc}")
                    pending.pop(digest)
                    on_result(result)


def run_ray(tasks: list[dict], on_result: OnResult, *, address: str | None = None, num_cpus: int | None = None,
            retries: int = 2, run: Callable[[dict], dict] = run_scenario) -> None:
    """Run tasks as Ray tasks (`max_retries` = retries for dying workers), streaming results as they finish.

    Connects to `address` (or RAY_ADDRESS); with neither, starts a local Ray cluster of `num_cpus` CPUs and
    shuts it down afterwards. A Ray cluster this process already joined is reused and left running.
    """
    try:
        import ray
    except ImportError:
        raise SolverUnavailableError("--ray needs Ray: pip install 'parplan[ray]'") from None
    started = not ray.is_initialized()
    if started:
        address = address or os.environ.get("RAY_ADDRESS") or None
        try:
            ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        except Exception as exc:  # Ray raises several unrelated types for "no cluster could be reached/started"
            where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
            raise SolverUnavailableError(f"--ray: could not connect to {where}: {type(exc).__name__}: "
                                         f"{' '.join(_plain(str(exc)).split())}") from None
    try:
        remote = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=False)(run)
        refs = {remote.remote(t): t for t in tasks}
        while refs:
            finished, _ = ray.wait(list(refs), num_returns=1)
            for ref in finished:
                task = refs.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    result = died(task, f"Ray task failed ({type(exc).__name__}): {_plain(str(exc))}")
                on_result(result)
    finally:
        if started:
            ray.shutdown()
