"""Worker processes for jobs that are independent of each other (the demo's runs, an
experiment's networks and ensembles).

The networks here are small: one of them gains little from a second torch thread, so two
processes of one thread each keep two cores busy where one process of two threads does not.
Every job runs with one torch thread, in a worker or in this process alike, so that the numbers
do not depend on the worker count. ``concurrent.futures`` gives the pool; this module adds the
one-thread rule, an in-process stand-in with the same interface, and progress in the jobs' order.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from typing import Any

import torch

from .devices import usable_cpus


def default_workers(asked: int = 0) -> int:
    """``asked``, or with 0 one worker per usable CPU, at most 2 (what pays on small networks)."""
    return asked if asked > 0 else max(1, min(2, usable_cpus()))


def one_thread() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"  # zoo_ensemble.devices.configure_threads respects it
    torch.set_num_threads(1)


def worker_pool(n: int) -> Executor:
    """``n`` spawned worker processes of one torch thread each; with 1, this process."""
    if n == 1:
        return InProcess()
    return ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"), initializer=one_thread)


class InProcess(Executor):
    """The pool's interface, run here, with the same one torch thread the workers have."""

    def __enter__(self) -> InProcess:
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)
        return self

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self._threads)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def run_each(
    pool: Executor, fn: Callable[..., Any], jobs: Sequence[tuple], progress: Callable[[int, int], None] = lambda *_: None,
    weights: Sequence[int] = (), finished: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """``fn(*job)`` for every job on the pool, the results in the jobs' order; ``progress(done,
    total)`` as jobs finish, each counting its weight (1 by default), and ``finished(index,
    result)`` for each."""
    weights = list(weights) or [1] * len(jobs)
    progress(0, sum(weights))
    futures = {pool.submit(fn, *job): i for i, job in enumerate(jobs)}
    results: list[Any] = [None] * len(jobs)
    done = 0
    for future in as_completed(futures):
        i = futures[future]
        results[i] = future.result()
        done += weights[i]
        progress(done, sum(weights))
        if finished is not None:
            finished(i, results[i])
    return results


def shares(items: Sequence[Any], n: int) -> list[list[Any]]:
    """``items`` dealt round-robin to ``n`` workers, the empty hands left out."""
    return [share for share in (list(items[i::n]) for i in range(n)) if share]
