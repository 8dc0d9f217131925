"""The reading half of `xlt sync`: MLflow runs, their latest metric values, histories, artifacts.

A SQL store's histories are read in one query per run; a tracking server's with several
requests in flight, a few runs ahead of the Aim writes.
"""
from __future__ import annotations

import math
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Sequence, Tuple

from xlt.core import tags
from xlt.core.errors import ConfigError
from xlt.tracking.heartbeat import seen_status

REQUESTS_IN_FLIGHT, RUNS_AHEAD = 8, 4  # history reads from a tracking server


def latest_points(run) -> Dict[str, list]:
    return {m.key: [m.step, m.timestamp, m.value] for m in run.data._metric_objs}


def aim_tags(run) -> Dict[str, str]:
    """The run's tags that Aim shows: every xlt tag but the beat itself (a clock reading that changes
    every few seconds); MLflow's own (the parent run, the UI's notes) stay in MLflow."""
    return {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.") and k != tags.HEARTBEAT}


def run_meta(run) -> dict:
    """What of a run the sync writes besides metrics, to notice a change: status, end, params,
    tags and description. A change Aim would not show (e.g. a new parent run) is no change."""
    return {"status": seen_status(run), "end_time": run.info.end_time, "n_params": len(run.data.params),
            "tags": [list(t) for t in sorted(aim_tags(run).items())],
            "description": run.data.tags.get("mlflow.note.content")}


class MlflowReader:
    def __init__(self, tracking_uri: str, experiments: Sequence[str] = ()):
        import mlflow

        self.client = mlflow.MlflowClient(tracking_uri)
        self.tracking_uri = tracking_uri
        self.experiment_names = list(experiments)

    def experiments(self) -> list:
        """The experiments asked for (all when none was named)."""
        if not self.experiment_names:
            return self.client.search_experiments()
        found = []
        for name in self.experiment_names:
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise ConfigError("--experiment", f"no experiment {name!r} in {self.tracking_uri}")
            found.append(exp)
        return found

    def runs(self, experiment) -> list:
        """The experiment's runs: its jobs' and its sweeps' parent runs (their counts, best accuracy,
        report, results and charts; `xlt.kind: sweep` among their tags)."""
        runs, token = [], None
        while True:
            page = self.client.search_runs([experiment.experiment_id], max_results=1000, page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

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

    def read_ahead(self, wanted: Iterable[Tuple[str, List[str]]]) -> Iterator[Dict[str, list]]:
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

    def artifact_paths(self, run_id: str) -> Iterator[str]:
        """Every artifact file of a run, folders walked."""
        folders = [None]
        while folders:
            for item in self.client.list_artifacts(run_id, folders.pop()):
                if item.is_dir:
                    folders.append(item.path)
                else:
                    yield item.path

    def download(self, run_id: str, path: str, into: str) -> Path:
        return Path(self.client.download_artifacts(run_id, path, into))
