"""The writing half of `xlt sync`: Aim runs made from MLflow runs, written crash-safely.

Aim keeps one value per (sequence, step), so writing a point again overwrites it: a sync that
rewrites the points since its last saved state leaves no duplicate and no gap. An Aim run
created just before a crash (not yet in the state) is found again by its `mlflow_run_id`
param and adopted.

Metric names: xlt's `split/lang/metric` becomes Aim name `metric` with context
`{subset: split, lang: lang}` (`split/metric`: `{subset: split}`); other names pass through.
A series that logs several values at one step (MLflow allows it) is laid out on the following
free steps. Original timestamps are kept.
"""
from __future__ import annotations

import ast
import fnmatch
import tempfile
from pathlib import Path
from typing import List, Sequence, Tuple

from xlt.core.metrics import TARGET_MEAN, parse_metric_name
from xlt.tracking.heartbeat import last_sign, seen_status
from xlt.tracking.mlflow_reader import MlflowReader, aim_tags
from xlt.tracking.sync_state import SyncState

TEXT_SUFFIXES = (".txt", ".log", ".yaml", ".yml", ".json", ".md", ".csv", ".tsv", ".py", ".rst")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp")


def aim_name(key: str) -> Tuple[str, dict]:
    """MLflow metric name -> (Aim name, Aim context)."""
    parsed = parse_metric_name(key)
    if parsed is None:
        return key, {}
    context = {"subset": parsed.split}
    if parsed.lang == TARGET_MEAN:  # a mean over languages, not a language: charts divided by lang skip it
        return f"{TARGET_MEAN}_{parsed.metric}", context
    if parsed.lang:
        context["lang"] = parsed.lang
    return parsed.metric, context


def typed(value: str):
    """An MLflow param string back as the int, float, bool or None it was logged from (xlt logs
    Python's str() of typed values: `None`, `True`, `0.001`); any other string, `none` too, stays."""
    try:
        parsed = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return value
    return parsed if isinstance(parsed, (int, float, bool, type(None), list, dict)) else value


def track_series(aim_run, name: str, context: dict, points: List[Tuple[float, float, int]]) -> None:
    """Append (value, timestamp s, step) points to one Aim metric, as `Run.track` would.

    Through the run's own tracker, which `Run.track` calls once per point: it stores each
    point (value, step, epoch, time) and then updates the series' bookkeeping (first, last,
    min, max, length). Here the points are stored one by one, but the bookkeeping runs only
    for the first point, the extremes and the last one, which leaves it exactly as per-point
    calls would; and each point keeps its MLflow timestamp instead of the time of the call.
    """
    from aim.storage.context import Context

    tracker, ctx = aim_run._tracker, Context(context)
    seq = tracker.sequence_infos[ctx.idx, name]
    if not seq.initialized:
        tracker._init_sequence_info(ctx.idx, name, points[0][0])
    tracker._update_context_data(ctx)
    for value, timestamp, step in points:
        tracker._add_value(seq, value, step, None, timestamp)
    values = [p[0] for p in points]
    finite = [i for i, v in enumerate(values) if v == v] or [0]  # NaN never becomes min or max
    lowest = min(finite, key=values.__getitem__)
    highest = max(finite, key=values.__getitem__)
    for i in dict.fromkeys([0, lowest, highest, len(points) - 1]):
        tracker._update_sequence_info(ctx.idx, name, points[i][0], points[i][2])


def index_runs(repo, aim_hashes: Sequence[str]) -> None:
    """Put closed runs into their repo's index, so `Repo.iter_runs` and queries see them at once
    (Aim 3.29 otherwise indexes runs only in the background of `aim up`). The index is opened
    once for all of them (held here, Aim's pool hands it to each run's indexing), not once a run."""
    from aim.sdk.index_manager import RepoIndexManager

    if not aim_hashes:
        return
    manager, held = RepoIndexManager.get_index_manager(repo), repo._get_index_container("meta", 0)
    for aim_hash in aim_hashes:
        manager.index(aim_hash)
    del held


class AimWriter:
    """Aim runs in one repository, one per MLflow run."""

    def __init__(self, repo_dir: Path, exclude_artifacts: Sequence[str] = ()):
        self.repo_dir = Path(repo_dir).expanduser().resolve()
        self.exclude = list(exclude_artifacts)
        self._repo = None

    @property
    def repo(self):
        if self._repo is None:
            from aim.sdk.repo import Repo

            self.repo_dir.mkdir(parents=True, exist_ok=True)
            self._repo = Repo.from_path(str(self.repo_dir), init=not Repo.exists(str(self.repo_dir)))
        return self._repo

    def open(self, state: SyncState, run, experiment: str):
        """The Aim run of an MLflow run: the recorded one, else a new one recorded at once."""
        from aim import Run

        options = dict(repo=self.repo, system_tracking_interval=None, capture_terminal_logs=False,
                       log_system_params=False)
        entry = state.runs.get(run.info.run_id)
        if entry and self.repo.run_exists(entry["aim_hash"]):
            # Only one sync writes a repo at a time (file lock), so a leftover lock is stale.
            return Run(run_hash=entry["aim_hash"], force_resume=True, **options), entry
        aim_run = Run(experiment=experiment, **options)
        aim_run["mlflow_run_id"] = run.info.run_id
        entry = state.new_entry(run.info.run_id, aim_run.hash)
        state.save(run.info.run_id)
        return aim_run, entry

    @staticmethod
    def close(aim_run, entry: dict) -> None:
        """Close the run; it is indexed with the others as the sync ends (`index`)."""
        aim_run.close()
        entry["indexed"] = False

    def index(self, state: SyncState) -> None:
        """Index every run closed since the last index: this sync's, and any a killed sync left."""
        pending = [entry for entry in state.runs.values() if entry.get("indexed") is False]
        index_runs(self.repo, [entry["aim_hash"] for entry in pending])
        for entry in pending:
            entry["indexed"] = True

    def adopt_orphans(self, state: SyncState) -> None:
        """Aim runs a killed sync created but never recorded: find their MLflow run again."""
        known = {e["aim_hash"] for e in state.runs.values()} | set(state.foreign)
        chunks = self.repo_dir / ".aim" / "meta" / "chunks"  # a run each; listed without Aim's import
        unknown = [p.name for p in chunks.iterdir() if p.name not in known] if chunks.is_dir() else []
        if not unknown:
            return
        from aim.sdk.run import Run

        index_runs(self.repo, unknown)
        for aim_hash in unknown:
            mlflow_id = Run(aim_hash, repo=self.repo, read_only=True).get("mlflow_run_id")
            if mlflow_id and mlflow_id not in state.runs:
                state.new_entry(mlflow_id, aim_hash)
            else:
                state.foreign.append(aim_hash)
        state.compact()

    def write_meta(self, aim_run, run, experiment: str) -> None:
        info = run.info
        aim_run.name = info.run_name
        aim_run["mlflow_run_id"] = info.run_id
        aim_run["mlflow"] = {"run_id": info.run_id, "experiment": experiment, "status": seen_status(run),
                             "start_time": (info.start_time or 0) / 1000,
                             "end_time": info.end_time / 1000 if info.end_time else None}
        aim_run["params"] = {k: typed(v) for k, v in run.data.params.items()}
        aim_run["tags"] = aim_tags(run)
        aim_run.description = run.data.tags.get("mlflow.note.content")
        self._write_times_and_status(aim_run, run)

    @staticmethod
    def _write_times_and_status(aim_run, run) -> None:
        """Aim's run list shows creation time, duration and whether a run is active: make them the
        MLflow run's, not this sync's; a run that did not finish carries its status as an Aim tag.
        Through Aim 3.29's run internals (pinned in pyproject.toml): its API sets neither time."""
        import datetime

        props = aim_run.props
        props._model.created_at = datetime.datetime.fromtimestamp(run.info.start_time / 1000, datetime.timezone.utc
                                                                  ).replace(tzinfo=None)
        props._session.add(props._model)
        props._session.commit()
        status = seen_status(run)  # a RUNNING run whose process died shows as FAILED, ended at its last beat
        end = (run.info.end_time / 1000 if run.info.end_time and run.info.status != "RUNNING" else
               last_sign(run)[0] if status != run.info.status else None)
        resources = aim_run._resources  # closing the run writes its end time: MLflow's, None if running
        resources.set_run_end_time = lambda: resources.meta_run_tree.__setitem__("end_time", end)
        tags = set(props.tags)
        for name in ("RUNNING", "FAILED", "KILLED"):
            if name == status and name not in tags:
                aim_run.add_tag(name)
            elif name != status and name in tags:
                aim_run.remove_tag(name)

    def write_metric(self, aim_run, key: str, history: list, done: dict) -> int:
        """Points of `key` past those written before; returns how many were written."""
        new = history[done.get("count", 0):]
        step, points = done.get("aim_step", -1), []
        for value, timestamp, mlflow_step in new:
            step = max(mlflow_step, step + 1)
            points.append((value, timestamp / 1000, step))
        if points:
            name, context = aim_name(key)
            track_series(aim_run, name, context, points)
        done.update(count=len(history), aim_step=step)
        return len(points)

    def write_artifacts(self, aim_run, reader: MlflowReader, run, entry: dict) -> None:
        """The run's text and image artifacts not written before (and not excluded)."""
        from aim import Image, Text

        seen, store = set(entry["artifacts"]), reader.artifacts(run)
        with tempfile.TemporaryDirectory(prefix="xlt-sync-") as tmp:
            for path in reader.artifact_paths(store):
                if path in seen or any(fnmatch.fnmatch(path, glob) for glob in self.exclude):
                    continue
                if path.lower().endswith(TEXT_SUFFIXES):
                    text = reader.download(store, path, tmp).read_text(errors="replace")
                    aim_run.track(Text(text), name=path, context={"type": "artifact"})
                elif path.lower().endswith(IMAGE_SUFFIXES):
                    aim_run.track(Image(str(reader.download(store, path, tmp)), caption=path), name=path,
                                  context={"type": "artifact"})
                else:
                    continue
                entry["artifacts"].append(path)
