"""How the batch stage uses the machine: parts computed side by side in worker processes, and the
allocator setting every process of it runs with.

On a CPU, PyTorch's threads share a batch's convolutions well but leave cores idle in the many small
steps between them (L-BFGS's line searches, IAA's pixel picks, the Python around every batch): two
processes of one thread each keep two cores busier than one process of two threads
(docs/benchmarks.md). A part reads only the parts its ``ranking`` and ``source`` fields name, so it
starts once those are written; parts that others wait for (clean passes, attacks) start first, which
also leaves the short parts for the end, where they fill the gaps. Each worker writes its parts
itself, atomically (compute/parts.py). A part's batches do not depend on the worker count, but its
threads do (the cores shared out), and a kernel may round differently with one thread than with two:
tables computed with another number of workers agree to float rounding, and bit for bit with the
same number (on the demo they agree bit for bit anyway, docs/benchmarks.md).
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

from .parts import Part

# Memory settings of the processes that compute (docs/benchmarks.md, "The demo's 3 minutes"):
# - THP_MEM_ALLOC_ENABLE: PyTorch backs CPU tensors of 2 MB and more with transparent huge pages, so
#   a batch's activations fault in 2 MB at a time instead of 4 KB, with fewer TLB misses in the
#   convolutions. PyTorch reads it when it is imported: the command's own process gets it too.
# - MALLOC_*: glibc keeps freed blocks for the next batch instead of handing them back and faulting
#   them in again. glibc reads them when a process starts: only the processes started from here on
#   (workers, the feature maps) get them.
# Together, on the demo: page faults 8.2 million -> 0.66 million, system time 22 s -> 6 s.
PROCESS_ENV = {"THP_MEM_ALLOC_ENABLE": "1", "MALLOC_MMAP_THRESHOLD_": str(1 << 32),
               "MALLOC_TRIM_THRESHOLD_": str(1 << 32)}
FIRST_UNITS = ("clean", "attack")  # parts that others read: started before any part that reads one


def set_process_env() -> None:
    """Put ``PROCESS_ENV`` into this process's environment (a value already set wins): call it before
    importing torch, which reads its setting once, at import. glibc has read its own by now; the
    processes this one starts get them from the environment."""
    for name, value in PROCESS_ENV.items():
        os.environ.setdefault(name, value)


@contextmanager
def fresh_processes(**extra: str) -> Iterator[multiprocessing.context.BaseContext]:
    """The context to start worker processes in (spawn: a fork would copy this process's thread pools
    mid-use), with ``PROCESS_ENV`` and ``extra`` in their environment while inside (a user's own
    values win); the environment is restored on exit."""
    wanted = {**PROCESS_ENV, **extra}
    saved = {name: os.environ.get(name) for name in wanted}
    for name, value in wanted.items():
        os.environ.setdefault(name, value)
    try:
        yield multiprocessing.get_context("spawn")
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def auto_workers(requested: int, device_type: str, images: int, batch: int) -> int:
    """Worker processes for ``requested`` (0 = auto) on a test set of ``images`` images attacked in
    batches of ``batch``: on a GPU one, since one process keeps it busy; on a CPU one per core, at most
    two (measured on a 2-core machine: two workers of one thread each beat one of two threads,
    docs/benchmarks.md; more are untested), and one when the whole test set is a single batch, where
    starting a worker (about 4 s: PyTorch, the data, the models) costs more than it saves.

    ``images`` is the whole test set, never a shard's share: every shard of a run then gets the same
    count, and with it the same threads per process, so that N shards give the same bits as one run
    (a kernel may round differently with one thread than with two)."""
    if requested > 0:
        return requested
    if device_type != "cpu" or images <= batch:
        return 1
    return min(2, cores())


def cores() -> int:
    """The cores this process may run on (its CPU affinity: what Slurm, taskset or a container
    allots), not every core of the machine."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int) -> int:
    """PyTorch threads for each of ``workers`` processes: the cores shared out, at least one."""
    return max(1, cores() // workers)


def side_by_side(todo: Sequence[Part], workers: int, start: Callable[..., None], start_args: tuple[Any, ...],
                 compute: Callable[[Part], None], on_done: Callable[[Part], None] = lambda part: None) -> None:
    """Compute every part of ``todo`` with ``compute(part)`` in ``workers`` processes, each set up
    once by ``start(*start_args)``; a part starts only after the parts of ``todo`` it reads are done
    (parts outside ``todo`` are already written). ``on_done(part)`` runs in this process as each one
    finishes. The first failure (of a part, or of a worker's set-up) stops the work: no further part
    starts, the workers are ended, and the error is raised here as it was raised there.
    ``start`` and ``compute`` are module-level functions (they are sent to new processes)."""
    pending = {part.path: part for part in todo}
    order = sorted(todo, key=lambda part: part.unit not in FIRST_UNITS)  # stable: plan order within each group
    running: dict[Future, Part] = {}
    # The workers start inside (at the first parts handed out), so that they start with PROCESS_ENV.
    with fresh_processes() as context:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_set_up,
                                   initargs=(start, start_args))
        try:
            while order or running:
                ready = [part for part in order
                         if not any(p in pending for p in (part.ranking, part.source) if p is not None)]
                # Hand a part out only when a worker is free, so that ``order`` decides what runs next.
                for part in ready[:max(0, workers - len(running))]:
                    running[pool.submit(_compute, compute, part)] = part
                    order.remove(part)
                if not running:
                    raise RuntimeError(f"parts wait for parts that are not planned: {[p.path for p in order]}")
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    part = running.pop(future)
                    future.result()  # re-raises the worker's error
                    del pending[part.path]
                    on_done(part)
        except BaseException:
            # Every submitted part is already running: cancelling would not stop it, ending its process does.
            processes = list((getattr(pool, "_processes", None) or {}).values())  # CPython's pool keeps them there
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()
            raise
        pool.shutdown()


_SET_UP_ERROR: list[BaseException] = []  # a worker's set-up error, raised by its first part


def _set_up(start: Callable[..., None], start_args: tuple[Any, ...]) -> None:
    """A worker's set-up; an error is kept for its first part to raise, so that the caller sees it and
    not a broken pool."""
    try:
        start(*start_args)
    except Exception as exc:  # noqa: BLE001 - any error: it is raised again, unchanged, by _compute
        _SET_UP_ERROR.append(exc)


def _compute(compute: Callable[[Part], None], part: Part) -> None:
    if _SET_UP_ERROR:
        raise _SET_UP_ERROR[0]
    compute(part)
