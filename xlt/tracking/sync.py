"""`xlt sync`: MLflow runs into an Aim repository, incrementally, idempotently, crash-safely.

What makes it incremental: the sync's state (xlt.tracking.sync_state) records, per MLflow run,
its Aim run's hash and, per metric, the latest point seen and how many points were written. A
sync asks MLflow for every run with its latest metric values (one search per experiment) and
reads the history only of metrics whose latest point changed (xlt.tracking.mlflow_reader),
writing only the points past the recorded count (xlt.tracking.aim_writer). Unchanged runs cost
no Aim access at all.

What makes it crash-safe: the state of a run is saved only after its Aim run is closed, so after
a crash the next sync rewrites the points since the last save, which Aim overwrites in place.
Closed runs are indexed together as the sync ends (one opening of Aim's index, not one a run); a
run a killed sync closed but never indexed is indexed by the next.

A sync with many runs to write splits them over worker processes (xlt.tracking.sync_workers).
"""
from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from xlt.tracking.aim_writer import AimWriter
from xlt.tracking.mlflow_reader import MlflowReader, latest_points, run_meta
from xlt.tracking.store import sqlite_problem
from xlt.tracking.sync_state import SyncState
from xlt.tracking.sync_workers import workers_for, write_in_parallel


@dataclass
class SyncCounts:
    """What one sync did."""
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    points: int = 0
    seconds: float = 0.0

    def add(self, other: SyncCounts) -> None:
        for f in fields(self):
            if f.name != "seconds":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def line(self, repo: Path) -> str:
        return (f"xlt sync: {self.new} new, {self.updated} updated, {self.unchanged} unchanged runs; "
                f"{self.points:,} points in {self.seconds:.1f} s -> {repo}")


def _changed(state: SyncState, run) -> List[str]:
    """The run's metrics whose latest point differs from the one last synced."""
    done = (state.runs.get(run.info.run_id) or {}).get("metrics", {})
    return [k for k, point in latest_points(run).items() if done.get(k, {}).get("latest") != point]


def _to_write(state: SyncState, run) -> bool:
    entry = state.runs.get(run.info.run_id)
    return entry is None or entry["meta"] != run_meta(run) or bool(_changed(state, run))


class Syncer:
    def __init__(self, tracking_uri: str, aim_repo: Path, experiments: Sequence[str] = (),
                 exclude_artifacts: Sequence[str] = ()):
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        logging.getLogger("aim").setLevel(logging.WARNING)  # its run-status chatter, under Hydra's INFO
        # The writer force-resumes runs only this sync writes: Aim's data-corruption warning would only alarm.
        logging.getLogger("aim.sdk.lock_manager").setLevel(logging.ERROR)
        self.reader = MlflowReader(tracking_uri, experiments)
        self.writer = AimWriter(aim_repo, exclude_artifacts)
        self.repo_dir = self.writer.repo_dir

    def _sync_run(self, state: SyncState, run, experiment: str, counts: SyncCounts,
                  histories: Dict[str, list]) -> None:
        """Write the run's meta and the new points of `histories` (those of its changed metrics): a new
        run, or one whose metrics or meta changed since the last sync."""
        entry = state.runs.get(run.info.run_id)
        latest, meta = latest_points(run), run_meta(run)
        is_new = entry is None or not entry["metrics"]
        aim_run, entry = self.writer.open(state, run, experiment)
        try:
            self.writer.write_meta(aim_run, run, experiment)
            for key, history in histories.items():
                done = entry["metrics"].setdefault(key, {})
                counts.points += self.writer.write_metric(aim_run, key, history, done)
                done["latest"] = latest[key]
            if entry["meta"] != meta:  # new, or its status changed: artifacts may be new too
                self.writer.write_artifacts(aim_run, self.reader, run, entry)
        finally:
            self.writer.close(aim_run, entry)
        entry["meta"] = meta
        state.save(run.info.run_id)  # only now: a crash before this point rewrites the same points
        if is_new:
            counts.new += 1
        else:
            counts.updated += 1

    def write_runs(self, state, work: List[Tuple[str, object]], counts: SyncCounts, ran: Callable[[], None]) -> None:
        """Sync each (experiment, run) of `work`, calling `ran` after each."""
        histories = self.reader.read_ahead((run.info.run_id, _changed(state, run)) for _, run in work)
        for (experiment, run), new in zip(work, histories):
            self._sync_run(state, run, experiment, counts, new)
            ran()

    def sync(self, progress: bool = True, workers: Optional[int] = None) -> SyncCounts:
        """Sync every run; `workers`: processes writing them (None: `workers_for` the runs to write)."""
        from filelock import FileLock
        from tqdm.auto import tqdm

        started = time.perf_counter()
        counts = SyncCounts()
        self.repo_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.repo_dir / ".xlt_sync.lock")):
            state = SyncState(self.repo_dir)
            self.writer.adopt_orphans(state)
            work = [(exp.name, run) for exp in self.reader.experiments() for run in self.reader.runs(exp)]
            to_write = [(experiment, run) for experiment, run in work if _to_write(state, run)]
            counts.unchanged = len(work) - len(to_write)
            workers = min(workers or workers_for(len(to_write)), len(to_write)) or 1
            bar = tqdm(total=len(to_write), desc="xlt sync", unit="run", disable=not progress, leave=False)
            try:
                if workers > 1:
                    write_in_parallel(self, state, to_write, counts, bar.update, workers)
                else:
                    self.write_runs(state, to_write, counts, bar.update)
            finally:  # what was closed is indexed, whatever stopped the loop (a killed sync's: by the next)
                bar.close()
                self.writer.index(state)
            if counts.new or counts.updated or not state.path.is_file():
                state.compact()
            if not (self.repo_dir / ".aim").is_dir():
                _ = self.writer.repo  # an empty store still leaves an Aim repo to open
        counts.seconds = time.perf_counter() - started
        return counts


def repo_problem(aim_repo: Path) -> Optional[str]:
    """Why an Aim repository cannot be written (its run table damaged, read-only), or None."""
    table = Path(aim_repo) / ".aim" / "run_metadata.sqlite"
    problem = table.is_file() and sqlite_problem(table)
    if problem:
        return (f"{table} {problem}; move {aim_repo} away and rerun the sync, which rebuilds it from MLflow "
                "(nothing of the runs is lost: MLflow holds them)")
    return None


def sync(tracking_uri: str, aim_repo: Path, experiments: Sequence[str] = (),
         exclude_artifacts: Sequence[str] = (), progress: bool = True, workers: Optional[int] = None) -> SyncCounts:
    return Syncer(tracking_uri, aim_repo, experiments, exclude_artifacts).sync(progress, workers)


def watch(tracking_uri: str, aim_repo: Path, interval: float, **options) -> None:
    """Sync every `interval` seconds until Ctrl-C; every Aim run is closed between syncs."""
    syncer = Syncer(tracking_uri, aim_repo, **options)
    print(f"xlt sync: watching {tracking_uri} every {interval:g} s -> {syncer.repo_dir} (Ctrl-C stops)", flush=True)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # e.g. `kill`, a scheduler
    try:
        while True:
            counts = syncer.sync(progress=False)
            if counts.new or counts.updated:
                print(counts.line(syncer.repo_dir), flush=True)
            time.sleep(interval)
    except KeyboardInterrupt:
        print("xlt sync: stopped", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
