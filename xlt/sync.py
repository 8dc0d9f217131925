"""`xlt sync`: MLflow runs into an Aim repository, incrementally, idempotently, crash-safely.

What makes it incremental: `<aim repo>/xlt_sync.json` records, per MLflow run, its Aim run's
hash and, per metric, the latest point seen (step, timestamp, value) and how many points were
written. A sync asks MLflow for every run with its latest metric values (one search per
experiment) and reads the history only of metrics whose latest point changed, writing only the
points past the recorded count. Unchanged runs cost no Aim access at all. A SQL store's
histories are read in one query per run; a tracking server's with several requests in flight,
a few runs ahead of the Aim writes.

What makes it crash-safe: Aim keeps one value per (sequence, step), so writing a point again
overwrites it. The state of a run is saved only after its Aim run is closed, so after a crash
the next sync rewrites the points since the last save, which leaves no duplicate and no gap.
An Aim run created just before a crash (not yet in the state) is found again by its
`mlflow_run_id` param and adopted.

Metric names: xlt's `split/lang/metric` becomes Aim name `metric` with context
`{subset: split, lang: lang}` (`split/metric`: `{subset: split}`); other names pass through.
Aim keeps one value per step, so a series that logs several values at one step (MLflow allows
it) is laid out on the following free steps. Original timestamps are kept.
"""
from __future__ import annotations

import ast
import fnmatch
import json
import logging
import math
import os
import signal
import tempfile
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Sequence, Tuple

from xlt import faults
from xlt.metrics import TARGET_MEAN, parse_metric_name
from xlt.runs import KIND_TAG

log = logging.getLogger(__name__)

STATE_FILE = "xlt_sync.json"
FORMAT = 1  # bump when the state's meaning changes
TEXT_SUFFIXES = (".txt", ".log", ".yaml", ".yml", ".json", ".md", ".csv", ".tsv", ".py", ".rst")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp")
REQUESTS_IN_FLIGHT, RUNS_AHEAD = 8, 4  # history reads from a tracking server


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
    """An MLflow param string back as the int, float, bool or None it was logged from."""
    try:
        parsed = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return {"true": True, "false": False, "none": None, "null": None}.get(value.strip().lower(), value)
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


def index_run(repo, aim_hash: str) -> None:
    """Put a closed run into its repo's index, so `Repo.iter_runs` and queries see it at once
    (Aim 3.29 otherwise indexes runs only in the background of `aim up`)."""
    from aim.sdk.index_manager import RepoIndexManager

    RepoIndexManager.get_index_manager(repo).index(aim_hash)


@dataclass
class Report:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    points: int = 0
    seconds: float = 0.0

    def line(self, repo: Path) -> str:
        return (f"xlt sync: {self.new} new, {self.updated} updated, {self.unchanged} unchanged runs; "
                f"{self.points:,} points in {self.seconds:.1f} s -> {repo}")


class State:
    """The sync's memory, one JSON file written atomically (write, then rename)."""

    def __init__(self, repo_dir: Path):
        self.path = repo_dir / STATE_FILE
        data = json.loads(self.path.read_text()) if self.path.is_file() else {}
        if data.get("format") != FORMAT:
            data = {}
        self.runs: Dict[str, dict] = data.get("runs", {})
        self.foreign: List[str] = data.get("foreign", [])  # Aim runs that no MLflow run made

    def save(self) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".xlt_sync.")
        with os.fdopen(fd, "w") as f:
            json.dump({"format": FORMAT, "runs": self.runs, "foreign": self.foreign}, f)
        os.replace(tmp, self.path)


def _latest(run) -> Dict[str, list]:
    return {m.key: [m.step, m.timestamp, m.value] for m in run.data._metric_objs}


def _meta(run) -> dict:
    """What of a run besides metrics, to notice a change (status, end, tags, params)."""
    return {"status": run.info.status, "end_time": run.info.end_time,
            "n_params": len(run.data.params), "tags": [list(t) for t in sorted(run.data.tags.items())]}


class Syncer:
    def __init__(self, tracking_uri: str, aim_repo: Path, experiments: Sequence[str] = (),
                 exclude_artifacts: Sequence[str] = ()):
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        logging.getLogger("aim").setLevel(logging.WARNING)  # its run-status chatter, under Hydra's INFO
        # `_open` force-resumes runs only this sync writes: Aim's data-corruption warning would only alarm.
        logging.getLogger("aim.sdk.lock_manager").setLevel(logging.ERROR)
        import mlflow

        self.client = mlflow.MlflowClient(tracking_uri)
        self.tracking_uri = tracking_uri
        self.repo_dir = Path(aim_repo).expanduser().resolve()
        self.experiments = list(experiments)
        self.exclude = list(exclude_artifacts)
        self._repo = None
        self._written, self._fault = 0, bool(os.environ.get("XLT_FAULT"))  # see xlt/faults.py

    # -- MLflow side -------------------------------------------------------------------------
    def _experiments(self):
        from xlt.errors import ConfigError

        if not self.experiments:
            return self.client.search_experiments()
        found = []
        for name in self.experiments:
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise ConfigError("--experiment", f"no experiment {name!r} in {self.tracking_uri}")
            found.append(exp)
        return found

    def _runs(self, experiment) -> list:
        """The experiment's job runs: a sweep's parent run holds its report, no curves for Aim."""
        runs, token = [], None
        while True:
            page = self.client.search_runs([experiment.experiment_id], max_results=1000, page_token=token)
            runs.extend(run for run in page if run.data.tags.get(KIND_TAG) != "sweep")
            token = page.token
            if not token:
                return runs

    # -- Aim side ----------------------------------------------------------------------------
    @property
    def repo(self):
        if self._repo is None:
            from aim.sdk.repo import Repo

            self.repo_dir.mkdir(parents=True, exist_ok=True)
            self._repo = Repo.from_path(str(self.repo_dir), init=not Repo.exists(str(self.repo_dir)))
        return self._repo

    def _open(self, state: State, run, experiment: str):
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
        entry = state.runs[run.info.run_id] = {"aim_hash": aim_run.hash, "metrics": {}, "artifacts": [],
                                               "meta": None}
        state.save()
        return aim_run, entry

    def _adopt_orphans(self, state: State) -> None:
        """Aim runs a killed sync created but never recorded: find their MLflow run again."""
        known = {e["aim_hash"] for e in state.runs.values()} | set(state.foreign)
        chunks = self.repo_dir / ".aim" / "meta" / "chunks"  # a run each; listed without Aim's import
        unknown = [p.name for p in chunks.iterdir() if p.name not in known] if chunks.is_dir() else []
        if not unknown:
            return
        from aim.sdk.run import Run

        for aim_hash in unknown:
            self._index(aim_hash)
            mlflow_id = Run(aim_hash, repo=self.repo, read_only=True).get("mlflow_run_id")
            if mlflow_id and mlflow_id not in state.runs:
                state.runs[mlflow_id] = {"aim_hash": aim_hash, "metrics": {}, "artifacts": [], "meta": None}
            else:
                state.foreign.append(aim_hash)
        state.save()

    def _index(self, aim_hash: str) -> None:
        index_run(self.repo, aim_hash)

    # -- one run -----------------------------------------------------------------------------
    def _write_meta(self, aim_run, run, experiment: str) -> None:
        info = run.info
        aim_run.name = info.run_name
        aim_run["mlflow_run_id"] = info.run_id
        aim_run["mlflow"] = {"run_id": info.run_id, "experiment": experiment, "status": info.status,
                             "start_time": (info.start_time or 0) / 1000,
                             "end_time": info.end_time / 1000 if info.end_time else None}
        aim_run["params"] = {k: typed(v) for k, v in run.data.params.items()}
        aim_run["tags"] = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
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
        end = run.info.end_time / 1000 if run.info.end_time and run.info.status != "RUNNING" else None
        resources = aim_run._resources  # closing the run writes its end time: MLflow's, None if running
        resources.set_run_end_time = lambda: resources.meta_run_tree.__setitem__("end_time", end)
        tags = set(props.tags)
        for status in ("RUNNING", "FAILED", "KILLED"):
            if status == run.info.status and status not in tags:
                aim_run.add_tag(status)
            elif status != run.info.status and status in tags:
                aim_run.remove_tag(status)

    def _sql_store(self):
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        store = getattr(getattr(self.client, "_tracking_client", None), "store", None)
        return store if isinstance(store, SqlAlchemyStore) else None

    def _histories(self, run_id: str, keys: List[str]) -> Dict[str, list]:
        """{key: [(value, timestamp ms, step)]} in MLflow's history order (timestamp, step, value),
        read from a SQL store in one query."""
        from mlflow.store.tracking.dbmodels.models import SqlMetric as M

        with self._sql_store().ManagedSessionMaker() as session:
            rows = (session.query(M.key, M.value, M.is_nan, M.timestamp, M.step)
                    .filter(M.run_uuid == run_id, M.key.in_(keys))
                    .order_by(M.key, M.timestamp, M.step, M.value).all())
        out: Dict[str, list] = {key: [] for key in keys}
        for key, value, is_nan, timestamp, step in rows:
            out[key].append((math.nan if is_nan else value, timestamp, step))
        return out

    def _history(self, run_id: str, key: str) -> list:
        return [(m.value, m.timestamp, m.step) for m in self.client.get_metric_history(run_id, key)]

    def _read_ahead(self, wanted: Iterable[Tuple[str, List[str]]]) -> Iterator[Dict[str, list]]:
        """The histories of each (run id, keys), in order. From a server, one request per metric
        (its REST API has no other exact read), REQUESTS_IN_FLIGHT at a time, RUNS_AHEAD runs ahead."""
        if self._sql_store() is not None:
            for run_id, keys in wanted:
                yield self._histories(run_id, keys) if keys else {}
            return
        with ThreadPoolExecutor(REQUESTS_IN_FLIGHT, thread_name_prefix="xlt-sync") as pool:
            ahead: deque = deque()
            for run_id, keys in wanted:
                ahead.append({key: pool.submit(self._history, run_id, key) for key in keys})
                if len(ahead) > RUNS_AHEAD:
                    yield {key: future.result() for key, future in ahead.popleft().items()}
            while ahead:
                yield {key: future.result() for key, future in ahead.popleft().items()}

    def _write_metric(self, aim_run, key: str, history: list, done: dict) -> int:
        """Points of `key` past those written before; returns how many were written."""
        new = history[done.get("count", 0):]
        step, points = done.get("aim_step", -1), []
        for value, timestamp, mlflow_step in new:
            step = max(mlflow_step, step + 1)
            points.append((value, timestamp / 1000, step))
        if points:
            name, context = aim_name(key)
            track_series(aim_run, name, context, points)
            self._written += len(points)
            if self._fault:
                faults.sync_points_written(self._written)
        done.update(count=len(history), aim_step=step)
        return len(points)

    def _write_artifacts(self, aim_run, run_id: str, entry: dict) -> None:
        from aim import Image, Text

        folders, seen = [None], set(entry["artifacts"])
        with tempfile.TemporaryDirectory(prefix="xlt-sync-") as tmp:
            while folders:
                for item in self.client.list_artifacts(run_id, folders.pop()):
                    path = item.path
                    if item.is_dir:
                        folders.append(path)
                        continue
                    if path in seen or any(fnmatch.fnmatch(path, glob) for glob in self.exclude):
                        continue
                    if path.lower().endswith(TEXT_SUFFIXES):
                        local = self.client.download_artifacts(run_id, path, tmp)
                        aim_run.track(Text(Path(local).read_text(errors="replace")), name=path,
                                      context={"type": "artifact"})
                    elif path.lower().endswith(IMAGE_SUFFIXES):
                        local = self.client.download_artifacts(run_id, path, tmp)
                        aim_run.track(Image(local, caption=path), name=path, context={"type": "artifact"})
                    else:
                        continue
                    entry["artifacts"].append(path)

    @staticmethod
    def _changed(state: State, run) -> List[str]:
        """The run's metrics whose latest point differs from the one last synced."""
        done = (state.runs.get(run.info.run_id) or {}).get("metrics", {})
        return [k for k, point in _latest(run).items() if done.get(k, {}).get("latest") != point]

    def _sync_run(self, state: State, run, experiment: str, report: Report, histories: Dict[str, list]) -> None:
        """Write the run's meta and the new points of `histories` (those of its changed metrics)."""
        entry = state.runs.get(run.info.run_id)
        latest, meta = _latest(run), _meta(run)
        if entry and not histories and entry["meta"] == meta:
            report.unchanged += 1
            return
        is_new = entry is None or not entry["metrics"]
        aim_run, entry = self._open(state, run, experiment)
        try:
            self._write_meta(aim_run, run, experiment)
            for key, history in histories.items():
                done = entry["metrics"].setdefault(key, {})
                report.points += self._write_metric(aim_run, key, history, done)
                done["latest"] = latest[key]
            if entry["meta"] != meta:  # new, or its status changed: artifacts may be new too
                self._write_artifacts(aim_run, run.info.run_id, entry)
        finally:
            aim_run.close()
        self._index(aim_run.hash)
        entry["meta"] = meta
        state.save()  # only now: a crash before this point rewrites the same points
        if is_new:
            report.new += 1
        else:
            report.updated += 1

    def sync(self, progress: bool = True) -> Report:
        from filelock import FileLock
        from tqdm.auto import tqdm

        started = time.perf_counter()
        report = Report()
        self.repo_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.repo_dir / ".xlt_sync.lock")):
            state = State(self.repo_dir)
            self._adopt_orphans(state)
            work = [(exp.name, run) for exp in self._experiments() for run in self._runs(exp)]
            histories = self._read_ahead((run.info.run_id, self._changed(state, run)) for _, run in work)
            for (experiment, run), new in tqdm(zip(work, histories), total=len(work), desc="xlt sync", unit="run",
                                               disable=not progress, leave=False):
                self._sync_run(state, run, experiment, report, new)
            if not (self.repo_dir / ".aim").is_dir():
                self.repo  # an empty store still leaves an Aim repo to open
        report.seconds = time.perf_counter() - started
        return report


def sync(tracking_uri: str, aim_repo: Path, experiments: Sequence[str] = (),
         exclude_artifacts: Sequence[str] = (), progress: bool = True) -> Report:
    return Syncer(tracking_uri, aim_repo, experiments, exclude_artifacts).sync(progress)


def watch(tracking_uri: str, aim_repo: Path, interval: float, **options) -> None:
    """Sync every `interval` seconds until Ctrl-C; every Aim run is closed between syncs."""
    syncer = Syncer(tracking_uri, aim_repo, **options)
    print(f"xlt sync: watching {tracking_uri} every {interval:g} s -> {syncer.repo_dir} (Ctrl-C stops)", flush=True)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # e.g. `kill`, a scheduler
    try:
        while True:
            report = syncer.sync(progress=False)
            if report.new or report.updated:
                print(report.line(syncer.repo_dir), flush=True)
            time.sleep(interval)
    except KeyboardInterrupt:
        print("xlt sync: stopped", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)


def sync_after(configs: Iterable) -> None:
    """The end-of-sweep (or end-of-run) sync into `tracking.aim.repo`, if switched on.

    A failed sync never fails the sweep: it is reported in one line, and `xlt sync` redoes it.
    """
    from omegaconf import DictConfig

    from xlt.config import validate
    from xlt.errors import ConfigError

    targets: Dict[Tuple[str, Path], List[str]] = {}
    for cfg in configs:
        try:
            cfg = validate(cfg) if isinstance(cfg, DictConfig) else cfg
        except ConfigError:
            continue
        if cfg.tracking.aim.sync:
            experiments = targets.setdefault((cfg.tracking_uri, cfg.aim_repo), [])
            if cfg.tracking.experiment not in experiments:
                experiments.append(cfg.tracking.experiment)
    for (uri, repo), experiments in targets.items():
        from xlt.runs import store_exists

        if not store_exists(uri):
            continue
        try:
            print(sync(uri, repo, experiments, progress=False).line(repo), flush=True)
        except Exception as e:  # noqa: BLE001 - the sweep's results are safe in MLflow
            print(f"xlt: warning: Aim sync into {repo} failed ({type(e).__name__}: {e}); "
                  f"rerun it with `xlt sync --mlflow-tracking-uri {uri} --aim-repo {repo}`", flush=True)
