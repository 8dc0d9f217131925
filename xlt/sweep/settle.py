"""The MLflow store's word on a sweep's jobs, whatever a launcher reported.

A job whose process died has left its run RUNNING: the run is ended here (KILLED when the sweep
stopped the job, else FAILED) with the reason. A job whose result a launcher dropped (submitit,
Ray and joblib drop a whole batch when one job dies) is known by its run: FINISHED, FAILED with
the run's own error, or never started.
"""
from __future__ import annotations

import logging
from typing import Dict, List, Mapping, Optional

from xlt.config import XltConfig
from xlt.core import tags
from xlt.core.metrics import target_score
from xlt.sweep.outcome import FAILED, FINISHED, KILLED, NOT_STARTED, Outcome
from xlt.tracking.store import end_runs, sweep_job_runs

log = logging.getLogger(__name__)
DIED = "the job's process died (killed, out of memory or past its time limit)"


def job_runs(configs: Mapping[int, XltConfig], sweep_id: str) -> Dict[int, list]:
    """job number -> the MLflow runs of that job of the sweep, newest first."""
    runs: Dict[int, list] = {}
    for uri, experiment in {(c.tracking_uri, c.tracking.experiment) for c in configs.values()}:
        for num, found in sweep_job_runs(uri, experiment, sweep_id).items():
            runs.setdefault(num, []).extend(found)
    return runs


def settle(outcomes: List[Outcome], configs: Mapping[int, XltConfig], sweep_id: str,
           lost: Optional[Dict[int, str]] = None) -> None:
    """Settle these outcomes with their runs; `lost`: job number -> what the launcher said of the
    jobs whose results it dropped."""
    runs = job_runs({o.num: configs[o.num] for o in outcomes}, sweep_id)
    for o in outcomes:
        _settle_one(o, runs.get(o.num, []), configs[o.num], (lost or {}).get(o.num))


def _settle_one(o: Outcome, found: list, cfg: XltConfig, launcher_said: Optional[str]) -> None:
    if found:  # a launcher's result may hold no run id
        o.run_id = o.run_id or found[0].info.run_id
        if found[0].info.end_time:  # the run's own duration: the one the report and Aim show
            o.seconds = (found[0].info.end_time - found[0].info.start_time) / 1000
    dead = [r for r in found if r.info.status == "RUNNING"]
    if dead:
        told = bool(o.error)  # xlt's launcher has logged the job's death already
        o.error = o.error or DIED
        status = KILLED if o.status == KILLED else FAILED
        end_runs(cfg.tracking_uri, dead, o.error, status)
        o.status, o.run_id = status, dead[0].info.run_id
        if not told:
            log.error("#%d %s: %s", o.num, o.status, o.error)
    elif o.status == NOT_STARTED:  # the launcher dropped its result: the run tells it
        _from_run(o, found, launcher_said)
        if o.status != FINISHED:
            log.error("#%d %s: %s", o.num, o.status, o.error)


def _from_run(o: Outcome, found: list, launcher_said: Optional[str]) -> None:
    finished = [r for r in found if r.info.status == "FINISHED"]
    run = (finished or found or [None])[0]
    o.run_id = run and run.info.run_id
    if finished:
        o.status, o.error = FINISHED, ""
        o.target_score = target_score(run)
    elif run:
        o.status, o.error = FAILED, run.data.tags.get(tags.ERROR, f"its run ended {run.info.status}")
    else:
        o.status = FAILED
        o.error = "no run: the job died before its run started, or never started"
        o.error += f" (the launcher: {launcher_said})" if launcher_said else ""
