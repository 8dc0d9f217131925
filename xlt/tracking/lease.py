"""One live run per job: a job's run claims its config hash before the job trains.

Two sweeps of the same command (started twice, or a rerun while the first still runs) must not
train a job twice. MLflow has no compare-and-set, so a job first starts its run (with a
heartbeat), then looks at the other runs of its hash: a FINISHED one, or a live RUNNING one that
started first (start time, then run id: every job sees the same order), holds the job, and this
run steps aside (deleted: it has logged nothing yet). A RUNNING one whose heartbeat has stopped
(long silent by its writer's clock, read on the writer's own host only; or unchanged while this
job watches it for a beat and a half, at least MIN_WATCH_S: a sweep killed a moment ago, or any
run another host wrote) lost its process: it ends FAILED with the reason, and this run takes the
job over.

Two processes may reopen the same KILLED run to resume it: each writes its own token to the
run, waits, and the one whose token was overwritten steps aside (the run stays the other's).
"""
from __future__ import annotations

import logging
import time
import uuid

from xlt.core import tags
from xlt.tracking.heartbeat import INTERVAL_S, MIN_WATCH_S, dead_by_clock, set_tag, silence

log = logging.getLogger(__name__)
OWNER = "xlt.owner"  # on a resumed run: the token of the process that reopened it
SETTLE_S = 2.0  # longer than two processes take between finding a KILLED run and reopening it


class Held(Exception):
    """Another run holds this job: it finished already, or it is running with a live heartbeat."""

    def __init__(self, run_id: str, why: str):
        super().__init__(why)
        self.run_id = run_id  # the holder: this job's own run when another process resumed it


def _where(run) -> str:
    sweep = run.data.tags.get(tags.SWEEP)
    return f"run {run.info.run_id}" + (f" of sweep {sweep}" if sweep else "")


def claim(uri: str, run, config_hash: str, resumed: bool = False, finished_holds: bool = True) -> None:
    """Make `run` (started, beating) the one live run of its job, or raise Held.

    `resumed`: the run was reopened from KILLED; `finished_holds`: a FINISHED run of the hash
    holds the job (`sweep.skip_finished`)."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    if resumed:
        _own(client, run.info.run_id)
    others = [r for r in client.search_runs([run.info.experiment_id], f"tags.`{tags.HASH}` = '{config_hash}'",
                                            max_results=1000)
              if r.info.run_id != run.info.run_id and r.data.tags.get(tags.KIND) != "sweep"]
    others = [_alive_or_ended(client, r, run) if r.info.status == "RUNNING" else r for r in others]
    for other in others:
        if other.info.status == "FINISHED" and finished_holds:
            raise Held(other.info.run_id, f"{_where(other)} finished this job meanwhile")
        if other.info.status == "RUNNING" and _first(other, run):
            raise Held(other.info.run_id, f"{_where(other)} is running this job")


def _alive_or_ended(client, other, run):
    """`other` as it is once told: still RUNNING with a live process, or ended (FAILED here if
    its process died). Dead by its writer's clock only on the writer's own host; else dead when
    its beat has not changed while this process watched it (a beat and a half, at least
    MIN_WATCH_S of this process's own clock)."""
    interval = float(other.data.tags.get(tags.HEARTBEAT_S, INTERVAL_S))
    watch_s = max(1.5 * interval, MIN_WATCH_S)
    beat, deadline = other.data.tags.get(tags.HEARTBEAT), time.monotonic() + watch_s
    while not dead_by_clock(other) and time.monotonic() < deadline:
        time.sleep(min(0.5, interval / 4))
        other = client.get_run(other.info.run_id)
        if other.info.status != "RUNNING" or other.data.tags.get(tags.HEARTBEAT) != beat:
            return other  # ended, or beating
    silent = f"{silence(other):.0f} s" if dead_by_clock(other) else f"the {watch_s:g} s it was watched"
    why = f"its process died (no heartbeat for {silent}); run {run.info.run_id} took over its job"
    log.warning("%s: %s", _where(other), why)
    client.set_tag(other.info.run_id, tags.ERROR, why)
    client.set_terminated(other.info.run_id, "FAILED")
    return client.get_run(other.info.run_id)


def _own(client, run_id: str) -> None:
    token = uuid.uuid4().hex
    set_tag(client, run_id, OWNER, token)
    time.sleep(SETTLE_S)
    if client.get_run(run_id).data.tags.get(OWNER) != token:
        raise Held(run_id, f"another process resumed run {run_id} at the same time")


def _first(a, b) -> bool:
    return (a.info.start_time, a.info.run_id) < (b.info.start_time, b.info.run_id)
