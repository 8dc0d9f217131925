"""A sweep's parent run: started with the sweep's first jobs, beating while the sweep's process
lives, so that its jobs nest under it in the MLflow UI from the start and can tell when their
sweep died (xlt.tracking.heartbeat.SweepWatch). The report logs itself to it and ends it
(xlt.report.publish); a sweep ends it itself when there is no report.
"""
from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from typing import Optional

from xlt.config import XltConfig
from xlt.core import tags
from xlt.tracking.experiment import experiment_id
from xlt.tracking.heartbeat import beating

log = logging.getLogger(__name__)


def sweep_run(uri: str, experiment_id: str, sweep_id: str) -> Optional[str]:
    """The id of the sweep's parent run, if it has one."""
    import mlflow

    query = f"tags.`{tags.SWEEP}` = '{sweep_id}' and tags.`{tags.KIND}` = 'sweep'"
    found = mlflow.MlflowClient(uri).search_runs([experiment_id], query, max_results=1)
    return found[0].info.run_id if found else None


class SweepRun:
    """The parent run of one sweep in one store, beating from `start` to `end`."""

    def __init__(self, cfg: XltConfig, sweep_id: str):
        self.cfg, self.uri, self.sweep_id = cfg, cfg.tracking_uri, sweep_id
        self.run_id: Optional[str] = None
        self._beat = ExitStack()

    def start(self) -> None:
        import mlflow

        mlflow.set_tracking_uri(self.uri)
        found = experiment_id(self.cfg)
        self.run_id = sweep_run(self.uri, found, self.sweep_id) or mlflow.MlflowClient(self.uri).create_run(
            found, start_time=int(time.time() * 1000), run_name=f"sweep {self.sweep_id}",
            tags={tags.SWEEP: self.sweep_id, tags.KIND: "sweep"}).info.run_id
        self._beat.enter_context(beating(self.uri, self.run_id, self.cfg.tracking.heartbeat_s))

    def stop_beating(self) -> None:
        self._beat.close()

    def end(self, status: str) -> None:
        """End the run as `status` unless the report ended it already."""
        import mlflow

        self.stop_beating()
        if self.run_id is None:
            return
        client = mlflow.MlflowClient(self.uri)
        if client.get_run(self.run_id).info.status == "RUNNING":
            client.set_terminated(self.run_id, status)
