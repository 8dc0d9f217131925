"""Queries and fixes of the MLflow store: what a rerun may skip or resume, the runs of a sweep's
jobs, and ending runs a dead job process left RUNNING.

Runs are matched by the `xlt.config_hash` tag (xlt.config.config_hash), so a rerun finds
its earlier runs whatever sweep directory or date they were written under.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from xlt.core import tags
from xlt.core.metrics import SELECTED_STEP
from xlt.tracking.heartbeat import dead_by_clock, died

log = logging.getLogger(__name__)


def store_exists(uri: str) -> bool:
    """A local SQLite store that was never written has no runs: skip importing mlflow at all."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):]).is_file()
    return True


SQLITE_HEADER = b"SQLite format 3\x00"


def store_problem(uri: str, experiment: Optional[str] = None, writing: bool = True) -> Optional[str]:
    """Why a local SQLite store cannot be used (not a database, damaged, read-only), or why its
    `experiment` cannot (deleted); None where all is well. A store not yet made is fine."""
    if not uri.startswith("sqlite:///") or not store_exists(uri):
        return None
    path = Path(uri[len("sqlite:///"):])
    problem = sqlite_problem(path, writing)
    if problem and problem.startswith("cannot be written"):
        return f"{path} {problem}; make it and its directory writable, or give another tracking.uri"
    if problem:
        return f"{path} {problem}; restore it from a backup, or move it away and start a new store"
    return _experiment_problem(uri, experiment) if experiment else None


def sqlite_problem(path: Path, writing: bool = True) -> Optional[str]:
    """Why an SQLite file cannot be read (or, `writing`, written), or None: "is not an SQLite
    database", "is damaged (...)" or "cannot be written (...)"."""
    import sqlite3
    from contextlib import closing

    with open(path, "rb") as f:
        if f.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            return "is not an SQLite database"
    try:
        with closing(sqlite3.connect(f"file:{path}?mode={'rw' if writing else 'ro'}", uri=True, timeout=30)) as db:
            verdict = " ".join(db.execute("PRAGMA quick_check(1)").fetchone()[0].split())
            if verdict != "ok":
                return f"is damaged ({verdict})"
            if writing:  # a write rolled back: a read-only file, directory or mount fails here
                db.execute("BEGIN IMMEDIATE")
                db.execute("CREATE TABLE xlt_write_probe (x INTEGER)")
                db.rollback()
    except sqlite3.DatabaseError as e:
        if any(word in str(e) for word in ("readonly", "read-only", "unable to open")):
            return f"cannot be written ({e})"
        return f"is damaged ({e})"
    return None


def _experiment_problem(uri: str, experiment: str) -> Optional[str]:
    import mlflow

    found = mlflow.MlflowClient(uri).get_experiment_by_name(experiment)
    if found is not None and found.lifecycle_stage == "deleted":
        return (f"experiment {experiment!r} is deleted in {uri}: restore it with `MLFLOW_TRACKING_URI={uri} "
                f"mlflow experiments restore --experiment-id {found.experiment_id}`, or name another "
                "tracking.experiment")
    return None


def _search(uri: str, experiment: str, query: str) -> List:
    """Every run of `experiment` the query finds, newest first, page by page."""
    if not store_exists(uri):
        return []
    from xlt.tracking.mlflow_reader import MlflowReader

    reader = MlflowReader(uri)
    found = reader.client.get_experiment_by_name(experiment)
    if found is None:
        return []
    return reader.search([found.experiment_id], query, order_by=["attributes.start_time DESC"])


def finished_runs(uri: str, experiment: str, hashes: Iterable[str]) -> Dict[str, object]:
    """config hash -> the latest FINISHED run with that hash, for the hashes that have one."""
    wanted = set(hashes)
    found: Dict[str, object] = {}
    for run in _search(uri, experiment, "attributes.status = 'FINISHED'"):
        h = run.data.tags.get(tags.HASH)
        if h in wanted and h not in found:
            found[h] = run
    return found


CHECKPOINT_OWNER = "xlt_run_id"  # in a stop's checkpoint: the id of the run that wrote it
# In the checkpoint a job keeps as training ends: the rerun of a job stopped after it resumes at testing
# (weights, Trainer's state, the selection: no optimizer, nothing left to train).
TRAINED_MARKER = "xlt_trained"


def resumable_run(uri: str, experiment: str, config_hash: str) -> Optional[Tuple[str, Path]]:
    """(run id, checkpoint) of the latest KILLED run with this hash whose own checkpoint still exists,
    or FAILED one whose checkpoint was kept as training ended (TRAINED_MARKER: its process died, or
    an error struck, after training; the rerun tests it instead of training again).

    A checkpoint names the run that wrote it (CHECKPOINT_OWNER): one that another run overwrote
    (two sweeps sharing a directory) is never resumed."""
    runs = [r for r in _search(uri, experiment, f"tags.`{tags.HASH}` = '{config_hash}'")
            if r.info.status in ("KILLED", "FAILED")]  # newest first
    for run in runs:
        checkpoint = run.data.tags.get(tags.CHECKPOINT)
        if not checkpoint or not Path(checkpoint).is_dir():
            continue
        if run.info.status == "FAILED" and not (Path(checkpoint) / TRAINED_MARKER).is_file():
            continue
        owner = Path(checkpoint) / CHECKPOINT_OWNER
        writer = owner.read_text().strip() if owner.is_file() else None
        if writer != run.info.run_id:
            log.warning("not resuming run %s: %s was not written by it (%s); the job starts afresh", run.info.run_id,
                        checkpoint, f"it names run {writer}" if writer else "it names no run")
            continue
        damage = checkpoint_damage(Path(checkpoint))
        if damage:  # the old run stays KILLED with its tag: nothing of it is lost
            log.warning("not resuming run %s: %s %s; the job starts afresh", run.info.run_id, checkpoint, damage)
            continue
        return run.info.run_id, Path(checkpoint)
    return None


# What Trainer needs to resume exactly; the weights may be any of transformers' layouts.
CHECKPOINT_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt", "rng_state.pth")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def checkpoint_damage(checkpoint: Path) -> Optional[str]:
    """Why a stop's checkpoint cannot be resumed (a file missing or unreadable), or None."""
    needed = CHECKPOINT_FILES[:1] if (checkpoint / TRAINED_MARKER).is_file() else CHECKPOINT_FILES
    missing = [name for name in needed if not (checkpoint / name).is_file()]
    if not any((checkpoint / name).is_file() for name in WEIGHT_FILES):
        missing.append(WEIGHT_FILES[0])
    if missing:
        return f"lacks {', '.join(missing)}"
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError) as e:
        return f"has an unreadable trainer_state.json ({type(e).__name__})"
    return None


def sweep_job_runs(uri: str, experiment: str, sweep_id: str) -> Dict[int, List]:
    """job number -> the runs of that job of a sweep, newest first."""
    by_num: Dict[int, List] = {}
    for run in _search(uri, experiment, f"tags.`{tags.SWEEP}` = '{sweep_id}'"):
        num = run.data.tags.get(tags.JOB_NUM)
        if num is not None and run.data.tags.get(tags.KIND) != "sweep":
            by_num.setdefault(int(num), []).append(run)
    return by_num


def end_runs(uri: str, runs: Iterable, message: str, status: str = "FAILED") -> None:
    if not runs:
        return
    import mlflow

    client = mlflow.MlflowClient(uri)
    for run in runs:
        client.set_tag(run.info.run_id, tags.ERROR, message)
        client.set_terminated(run.info.run_id, status)


def end_dead_runs(uri: str, experiment: str) -> List[str]:
    """End FAILED, with the reason, every RUNNING run whose heartbeat has long stopped by its
    writer's clock, written on this host (a process killed with its sweep); returns their ids.
    Another host's runs are left to the lease, which watches their beat (xlt.tracking.lease)."""
    dead = [r for r in _search(uri, experiment, "attributes.status = 'RUNNING'") if dead_by_clock(r)]
    for run in dead:
        end_runs(uri, [run], died(run))
    if dead:
        log.warning("ended %d runs whose process died: %s", len(dead), ", ".join(r.info.run_id for r in dead))
    return [r.info.run_id for r in dead]


def replace_dead_attempts(uri: str, experiment: str, sweep_id: str, job_num: int) -> List[str]:
    """Delete the runs an earlier attempt of this sweep job left RUNNING when its process died.

    A launcher that retries a dead job (Ray does, 3 times) starts it again only after the
    attempt before it died, so such a run has no live writer: the retry replaces it.
    """
    dead = [r for r in sweep_job_runs(uri, experiment, sweep_id).get(job_num, []) if r.info.status == "RUNNING"]
    if dead:
        import mlflow

        end_runs(uri, dead, "its process died; the launcher retried the job")
        for run in dead:
            mlflow.MlflowClient(uri).delete_run(run.info.run_id)
    return [r.info.run_id for r in dead]


def selected_score(uri: str, run_id: str, metric: str) -> Optional[float]:
    """A FINISHED run's `metric` at the step whose weights it tested (`test/selected_step`),
    or at its last evaluation when that step had none; None when the run never logged it."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    run = client.get_run(run_id)
    if run.info.status != "FINISHED":
        return None
    history = sorted(client.get_metric_history(run_id, metric), key=lambda m: m.step)
    if not history:
        return None
    selected = run.data.metrics.get(SELECTED_STEP)
    at_selected = [m.value for m in history if m.step == selected]
    return at_selected[-1] if at_selected else history[-1].value
