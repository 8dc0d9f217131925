"""`xlt sync` in parallel: a sync with many runs to write splits them over worker processes (a core
each, at most `MAX_WORKERS`), each writing its own Aim runs into the one repository, as the processes
of a distributed training do. Only the sync's own process keeps the state: each worker sends it every
entry it would save, and it journals them; the workers' runs are indexed with the rest as the sync ends.
A worker killed midway loses nothing of what it saved; the next sync writes the rest.
"""
from __future__ import annotations

import os
import queue as queues
import signal
import sys
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from xlt.core.errors import first_line
from xlt.tracking.sync_state import SyncState


class WorkerStopped(RuntimeError):
    """A worker of a parallel sync stopped before its share was written (an error, or killed)."""


MAX_WORKERS = 4
RUNS_PER_WORKER = 100  # fewer runs a worker, and its start (importing Aim: seconds) costs more than it saves


def workers_for(runs_to_write: int, cores: Optional[int] = None) -> int:
    """How many processes write `runs_to_write` runs: one per core, each with enough runs to be worth starting."""
    return max(1, min(cores or os.cpu_count() or 1, MAX_WORKERS, runs_to_write // RUNS_PER_WORKER))


class _Relay:
    """A worker's view of the sync's state: its runs' entries; each save goes to the sync's process."""
    new_entry = SyncState.new_entry

    def __init__(self, runs: Dict[str, dict], outbox):
        self.runs, self.outbox = runs, outbox

    def save(self, run_id: str) -> None:
        self.outbox.put(("save", run_id, self.runs[run_id]))


def _write_part(tracking_uri: str, repo_dir: Path, exclude: Sequence[str], work: list, entries: Dict[str, dict],
                outbox) -> None:
    """A worker process: write its share of the runs, telling the sync each entry saved and each run done."""
    from xlt.tracking.sync import SyncCounts, Syncer  # the layer's own top: imported in the worker only

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the sync's to handle: it stops the workers
    counts = SyncCounts()
    try:
        Syncer(tracking_uri, repo_dir, exclude_artifacts=exclude).write_runs(
            _Relay(entries, outbox), work, counts, lambda: outbox.put(("ran",)))
    except BaseException as e:  # noqa: BLE001 - said to the sync, which stops with it
        outbox.put(("error", f"{type(e).__name__}: {first_line(e)}"))
        raise
    outbox.put(("counts", counts))


@contextmanager
def _no_main_to_reimport():
    """A spawned process re-imports its parent's __main__ module, which runs a script without an
    `if __name__ == "__main__"` guard (a notebook's helper, a user's script calling `sync`) again: the
    workers, whose code is all in xlt, are started from a blank one."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _relay(outbox, procs: list, state: SyncState, counts, ran) -> Tuple[int, List[str]]:
    """The workers' messages until each has reported its counts (or died): entries journaled, runs
    counted; returns how many reported, and the errors they sent."""
    reported, errors = 0, []
    while reported < len(procs):
        try:
            message = outbox.get(timeout=1)
        except queues.Empty:
            if any(proc.is_alive() for proc in procs):
                continue
            break  # a worker died without a word (killed): what it saved is journaled
        kind, *body = message
        if kind == "save":
            state.runs[body[0]] = body[1]
            state.save(body[0])
        elif kind == "ran":
            ran()
        elif kind == "counts":
            counts.add(body[0])
            reported += 1
        else:
            errors.append(body[0])
    return reported, errors


def write_in_parallel(syncer, state: SyncState, work: list, counts, ran, workers: int) -> None:
    """`syncer.write_runs` split over `workers` processes; this one journals what they save."""
    import multiprocessing

    _ = syncer.writer.repo  # made here first: two workers creating its tables at once would collide
    context = multiprocessing.get_context("spawn")  # Aim's and SQLite's handles never cross a fork
    outbox = context.Queue()
    procs = [context.Process(target=_write_part, daemon=True, args=(
        syncer.reader.tracking_uri, syncer.repo_dir, syncer.writer.exclude, part,
        {run.info.run_id: state.runs[run.info.run_id] for _, run in part if run.info.run_id in state.runs},
        outbox)) for part in (work[i::workers] for i in range(workers))]
    with _no_main_to_reimport():
        for proc in procs:
            proc.start()
    reported, errors = 0, []
    try:
        reported, errors = _relay(outbox, procs, state, counts, ran)
    finally:
        for proc in procs:  # done: they are ending; stopped early: they stop now
            proc.join(timeout=30 if reported == len(procs) else 0)
            if proc.is_alive():
                proc.terminate()
                proc.join()
    if errors or reported < len(procs):
        raise WorkerStopped(f"a worker stopped ({'; '.join(errors) or 'killed'}); what it wrote is kept, and "
                            "the next sync writes the rest")
