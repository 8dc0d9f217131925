"""MLflow read in bulk, for `xlt sync` and `xlt report`: runs, their latest metric values,
histories, artifacts.

A SQL store's histories are read in one query per run (the sync) or per few hundred runs (the
report); a tracking server's with several requests in flight, a few runs ahead of the Aim
writes. Runs are found by searches of a page of runs each, never one request a run.
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
IDS_PER_SEARCH = 100  # run ids in one search's `IN (...)` (a server's filter string stays short)
RUNS_PER_QUERY = 500  # runs whose histories one SQL query reads (SQLite's bound parameters: 32,766)


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
        return self.search([experiment.experiment_id])

    def search(self, experiment_ids: List[str], query: str = "", order_by: Sequence[str] = ()) -> list:
        """Every run a search finds, page by page (a page is one request: 1,000 runs)."""
        runs, token = [], None
        while True:
            page = self.client.search_runs(experiment_ids, query, max_results=1000, order_by=list(order_by),
                                           page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def runs_by_id(self, run_ids: Sequence[str]) -> list:
        """The runs of these ids that exist, in their order: a search per IDS_PER_SEARCH ids."""
        run_ids = list(dict.fromkeys(run_ids))
        experiments = [e.experiment_id for e in self.client.search_experiments()]
        found = {}
        wanted = [run_id for run_id in run_ids if run_id.isalnum()]  # an id is hex: nothing else reaches the query
        for i in range(0, len(wanted), IDS_PER_SEARCH):
            chunk = ", ".join(f"'{run_id}'" for run_id in wanted[i:i + IDS_PER_SEARCH])
            found.update({r.info.run_id: r for r in self.search(experiments, f"attributes.run_id IN ({chunk})")})
        return [found[run_id] for run_id in run_ids if run_id in found]

    def _sql_store(self):
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        store = getattr(getattr(self.client, "_tracking_client", None), "store", None)
        return store if isinstance(store, SqlAlchemyStore) else None

    def _histories(self, run_id: str, keys: List[str]) -> Dict[str, list]:
        """{key: [(value, timestamp ms, step)]} in MLflow's history order (timestamp, step, value),
        read from a SQL store in one query."""
        out: Dict[str, list] = {key: [] for key in keys}
        out.update({key: points for _, key, points in self._sql_series([run_id], keys)})
        return out

    def _sql_series(self, run_ids: Sequence[str], keys: Sequence[str]) -> Iterator[Tuple[str, str, list]]:
        """(run id, key, points) of the runs' `keys`, in one query of a SQL store."""
        from mlflow.store.tracking.dbmodels.models import SqlMetric as M

        with self._sql_store().ManagedSessionMaker() as session:
            rows = (session.query(M.run_uuid, M.key, M.value, M.is_nan, M.timestamp, M.step)
                    .filter(M.run_uuid.in_(run_ids), M.key.in_(keys))
                    .order_by(M.run_uuid, M.key, M.timestamp, M.step, M.value).all())
        series: Dict[Tuple[str, str], list] = {}
        for run_id, key, value, is_nan, timestamp, step in rows:
            series.setdefault((run_id, key), []).append((math.nan if is_nan else value, timestamp, step))
        yield from ((run_id, key, points) for (run_id, key), points in series.items())

    def _history(self, run_id: str, key: str) -> list:
        return [(m.value, m.timestamp, m.step) for m in self.client.get_metric_history(run_id, key)]

    def histories(self, runs: Sequence, keys: Sequence[str]) -> Iterator[Tuple[str, str, list]]:
        """(run id, key, [(value, timestamp ms, step)]) of the runs' logged `keys`: from a SQL store in a
        query per RUNS_PER_QUERY runs, from a server a request per run and logged key, several at a time."""
        if self._sql_store() is None:
            wanted = [(r.info.run_id, [key for key in keys if key in r.data.metrics]) for r in runs]
            for (run_id, _), history in zip(wanted, self.read_ahead(wanted)):
                yield from ((run_id, key, points) for key, points in history.items())
            return
        run_ids = [r.info.run_id for r in runs]
        for i in range(0, len(run_ids), RUNS_PER_QUERY):
            yield from self._sql_series(run_ids[i:i + RUNS_PER_QUERY], keys)

    def read_ahead(self, wanted: Iterable[Tuple[str, List[str]]]) -> Iterator[Dict[str, list]]:
        """The histories of each (run id, keys), in order. From a server, one request per metric
        (its REST API has no other exact read), REQUESTS_IN_FLIGHT at a time, RUNS_AHEAD runs ahead."""
        if self._sql_store() is not None:
            for run_id, keys in wanted:
                yield self._histories(run_id, keys) if keys else {}
            return
        with ThreadPoolExecutor(REQUESTS_IN_FLIGHT, thread_name_prefix="xlt-read") as pool:
            ahead: deque = deque()
            for run_id, keys in wanted:
                ahead.append({key: pool.submit(self._history, run_id, key) for key in keys})
                if len(ahead) > RUNS_AHEAD:
                    yield {key: future.result() for key, future in ahead.popleft().items()}
            while ahead:
                yield {key: future.result() for key, future in ahead.popleft().items()}

    def artifacts(self, run):
        """The run's artifact store, opened from its artifact location: no look-up of the run per file."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        return get_artifact_repository(run.info.artifact_uri, tracking_uri=self.tracking_uri)

    @staticmethod
    def artifact_paths(store) -> Iterator[str]:
        """Every artifact file in a run's artifact store (`artifacts`), folders walked."""
        folders = [None]
        while folders:
            for item in store.list_artifacts(folders.pop()):
                if item.is_dir:
                    folders.append(item.path)
                else:
                    yield item.path

    @staticmethod
    def download(store, path: str, into: str) -> Path:
        return Path(store.download_artifacts(path, into))
