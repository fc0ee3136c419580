"""Parts computed side by side (compute/workers.py): the same tables as one process, parts that read
other parts wait for them, a worker's error reaches the caller, and the memory settings take effect."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from compute import pipeline, workers
from compute.parts import Part, Plan
from conftest import ROOT, assert_same_tables, copy_models


def test_two_workers_give_the_tables_of_one_process_with_their_threads(tiny_run, tmp_path):
    values = tiny_run.to_dict()
    values["attacks"]["enabled"] = ["fgsm", "iaa", "lbfgs"]  # enough units to keep both workers busy
    one = copy_models(tiny_run, tmp_path / "one", {**values, "workers": 1})
    threads = torch.get_num_threads()
    torch.set_num_threads(workers.threads_per_worker(2))  # what each of two workers gets
    try:
        pipeline.compute(one, progress=False)
    finally:
        torch.set_num_threads(threads)
    two = copy_models(tiny_run, tmp_path / "two", {**values, "workers": 2})
    summary = pipeline.compute(two, progress=False)
    assert "2 workers" in summary.line() and summary.computed == len(Plan.read(two.results_dir).parts)
    assert_same_tables(two.results_dir, one.results_dir)


def _part(path: Path, unit: str, source: Path | None = None) -> Part:
    return Part(0, "m", unit, "c", "k", str(path), source=None if source is None else str(source))


def _slow_or_checked(part: Part) -> None:
    """Stands in for a unit: an attack takes a while; a part reading a source fails if it is not there."""
    if part.source is not None and not Path(part.source).is_file():
        raise RuntimeError(f"{part.path} started before its source {part.source} was written")
    if part.unit == "attack":
        time.sleep(1.0)
    Path(part.path).write_text(str(os.getpid()))


def _nothing() -> None:
    pass


def _fails(part: Part) -> None:
    if part.unit == "attack":
        raise ValueError(f"no images in {part.path}")
    Path(part.path).write_text("ran")


def _fails_beside_a_long_part(part: Part) -> None:
    Path(f"{part.path}.pid").write_text(str(os.getpid()))
    time.sleep(1.0)
    if part.unit == "attack":
        raise ValueError(f"no images in {part.path}")
    time.sleep(120)  # a long part beside the failing one


def _gone(pid: int) -> bool:
    """The process has ended (exited or a zombie waiting to be reaped)."""
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "\nState:\tZ" in status.read_text()


def _set_up_fails() -> None:
    raise FileNotFoundError("no checkpoint for model cnn-p0.2")


def test_a_part_waits_for_the_part_it_reads(tmp_path):
    slow, fast = _part(tmp_path / "attack-a", "attack"), _part(tmp_path / "attack-b", "clean")
    reader = _part(tmp_path / "features-a", "features", source=tmp_path / "attack-a")
    done: list[str] = []
    # The reader is listed first: run in that order, it would start beside the slow attack and fail.
    workers.side_by_side([reader, slow, fast], 2, _nothing, (), _slow_or_checked, lambda p: done.append(p.path))
    assert done.index(str(tmp_path / "features-a")) > done.index(str(tmp_path / "attack-a"))
    assert sorted(done) == sorted(str(tmp_path / n) for n in ("attack-a", "attack-b", "features-a"))


def test_a_workers_error_reaches_the_caller_and_stops_the_work(tmp_path):
    failing = _part(tmp_path / "a", "attack")
    reader = _part(tmp_path / "features-a", "features", source=tmp_path / "a")
    with pytest.raises(ValueError, match="no images in"):
        workers.side_by_side([failing, reader], 2, _nothing, (), _fails)
    assert not (tmp_path / "features-a").exists()  # a part reading a failed one never starts
    with pytest.raises(FileNotFoundError, match="no checkpoint"):  # a worker's set-up error, not a broken pool
        workers.side_by_side([_part(tmp_path / "b", "clean")], 2, _set_up_fails, (), _fails)


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads process states from /proc")
def test_a_failure_ends_the_part_running_beside_it(tmp_path):
    start = time.monotonic()
    with pytest.raises(ValueError, match="no images in"):
        workers.side_by_side([_part(tmp_path / "a", "attack"), _part(tmp_path / "b", "clean")], 2, _nothing, (),
                             _fails_beside_a_long_part)
    assert time.monotonic() - start < 60  # not the 120 s of the part beside it
    pid = int((tmp_path / "b.pid").read_text())
    deadline = time.monotonic() + 10
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(pid), "the worker of the long part is still running"


def test_auto_workers_follow_the_device_and_the_work():
    assert workers.auto_workers(3, "cpu", 100, 256) == 3  # asked for: given
    assert workers.auto_workers(0, "cuda", 10_000, 256) == 1  # one process keeps a GPU busy
    assert workers.auto_workers(0, "cpu", 256, 256) == 1  # one batch: a worker's start costs more than it saves
    assert workers.auto_workers(0, "cpu", 500, 256) == min(2, len(os.sched_getaffinity(0)))  # the cores allotted


@pytest.mark.skipif("[never]" in Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
                    if Path("/sys/kernel/mm/transparent_hugepage/enabled").is_file() else True,
                    reason="this kernel has no transparent huge pages to give")
def test_huge_pages_set_before_torch_cut_page_faults():
    probe = ("import resource, sys\n"
             "if sys.argv[1] == 'set':\n"
             "    from compute.workers import set_process_env; set_process_env()\n"
             "import torch\n"
             "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
             "for _ in range(10):\n"
             "    torch.ones(25_000_000).sum()\n"  # 100 MB: an EOT-PGD step's activations are of this size
             "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n")
    env = {k: v for k, v in os.environ.items() if k not in workers.PROCESS_ENV}
    faults = {mode: int(subprocess.run([sys.executable, "-c", probe, mode], cwd=ROOT, env=env, check=True,
                                       capture_output=True, text=True).stdout) for mode in ("plain", "set")}
    assert faults["set"] * 10 < faults["plain"], faults  # 4 KB pages faulted one by one without them
