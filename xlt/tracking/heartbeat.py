"""Which runs still have a live process, told from the MLflow store alone.

Every job's run carries a heartbeat, the tag `xlt.heartbeat` (the writer's clock, in seconds),
rewritten every `tracking.heartbeat_s` seconds (the tag `xlt.heartbeat_s`); so does a sweep's
parent run while the sweep's process lives. Three uses:
- a launcher that loses a job (submitit's UncompletedJobError, Ray's WorkerCrashedError) raises
  at once and drops every result of its batch: the sweep waits while some run's tag still
  changes (`wait_for_live_jobs`, comparing values, never clocks);
- a RUNNING run silent for `DEAD_AFTER` beats has no live process (`silence`): the report and the
  sync show it as dead. A decision to take a run's job over never compares two machines' clocks:
  the writer's clock is read only on the host that wrote it (`dead_by_clock`, the tag
  `xlt.heartbeat_host`); elsewhere the reader watches the beat change over its own clock
  (xlt.tracking.lease), for at least `MIN_WATCH_S`, and beats are at least
  `xlt.config.schema.MIN_BEAT_S` apart, a pace every store keeps;
- a job watches its sweep's run (`SweepWatch`) and stops with a checkpoint once the sweep died.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from contextlib import contextmanager
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from xlt.core.tags import HEARTBEAT, HEARTBEAT_HOST, HEARTBEAT_S

log = logging.getLogger(__name__)
INTERVAL_S = 10.0  # tracking.heartbeat_s's default
STALE_S = 3 * INTERVAL_S  # a lost batch's wait: no change in this long, no live writer
DEAD_AFTER = 6  # beats missed before a RUNNING run counts as dead: a busy store delays some
MIN_WATCH_S = 2.0  # the shortest watch of another run's beat before it counts as stopped


@contextmanager
def beating(uri: str, run_id: str, interval_s: float = INTERVAL_S,
            watch: Optional[Callable[[], None]] = None) -> Iterator[None]:
    """Rewrite the run's heartbeat every `interval_s` seconds while the block runs (the first
    beat before the block starts), calling `watch` after each beat."""
    import mlflow

    client, done = mlflow.MlflowClient(uri), threading.Event()
    set_tag(client, run_id, HEARTBEAT_S, f"{interval_s:g}")
    set_tag(client, run_id, HEARTBEAT_HOST, socket.gethostname())
    set_tag(client, run_id, HEARTBEAT, f"{time.time():.3f}")

    def beat() -> None:
        while not done.wait(interval_s):
            try:
                client.set_tag(run_id, HEARTBEAT, f"{time.time():.3f}")
                if watch is not None:
                    watch()
            except Exception as e:  # noqa: BLE001 - a busy store: the next beat tries again
                log.debug("heartbeat of %s: %s", run_id, e)

    thread = threading.Thread(target=beat, name="xlt-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=interval_s)
        try:  # an ended run has its status; the tag stays only on a run whose process died
            client.delete_tag(run_id, HEARTBEAT)
        except Exception as e:  # noqa: BLE001 - the run's status tells the rest
            log.debug("heartbeat of %s: %s", run_id, e)


def set_tag(client, run_id: str, key: str, value: str) -> None:
    """MLflow's set_tag, once more if another process inserted the same tag in the same instant
    (two processes resuming one run: SQLite's unique key fails the second insert; now it updates)."""
    from mlflow.exceptions import MlflowException

    try:
        client.set_tag(run_id, key, value)
    except MlflowException:
        time.sleep(0.1)
        client.set_tag(run_id, key, value)


def last_sign(run) -> Tuple[float, float]:
    """(unix time of a run's last beat, or of its start if it never beat; its beat interval)."""
    found = run.data.tags
    try:
        return float(found[HEARTBEAT]), float(found.get(HEARTBEAT_S, INTERVAL_S))
    except (KeyError, ValueError):  # never beat (or an older xlt's counter)
        return run.info.start_time / 1000, INTERVAL_S


def silence(run, now: Optional[float] = None) -> Optional[float]:
    """Seconds since a RUNNING run's last sign of life when that is more than DEAD_AFTER beats:
    its process is gone. None for a live or an ended run."""
    if run.info.status != "RUNNING":
        return None
    last, interval = last_sign(run)
    quiet = (time.time() if now is None else now) - last
    return quiet if quiet > DEAD_AFTER * interval else None


def dead_by_clock(run) -> bool:
    """Whether a RUNNING run is silent for DEAD_AFTER beats by its writer's own clock, which only a
    reader on the writer's host can read: another host's clock may be a minute off. (A run that
    names no host never beat, or an older xlt wrote it: its start time is all there is.)"""
    host = run.data.tags.get(HEARTBEAT_HOST)
    return host in (None, socket.gethostname()) and silence(run) is not None


def seen_status(run) -> str:
    """The run's status as readers should show it: a RUNNING run whose process died is FAILED."""
    return "FAILED" if silence(run) is not None else run.info.status


def died(run) -> str:
    """Why a run with a dead heartbeat counts as dead, in one line."""
    return f"its process died (no heartbeat for {silence(run) or 0:.0f} s)"


class SweepWatch:
    """Called on each of a job's beats: `on_gone(reason)` once the sweep's run has ended or its
    heartbeat has not changed for DEAD_AFTER of its beats, by this process's own clock."""

    def __init__(self, uri: str, sweep_run_id: str, on_gone: Callable[[str], None]):
        self.uri, self.run_id, self.on_gone = uri, sweep_run_id, on_gone
        self.seen, self.since, self.gone = None, time.monotonic(), False

    def __call__(self) -> None:
        import mlflow

        if self.gone:
            return
        run = mlflow.MlflowClient(self.uri).get_run(self.run_id)
        beat, now = run.data.tags.get(HEARTBEAT), time.monotonic()
        if beat != self.seen:
            self.seen, self.since = beat, now
        interval = float(run.data.tags.get(HEARTBEAT_S, INTERVAL_S))
        if run.info.status != "RUNNING" or now - self.since > DEAD_AFTER * interval:
            self.gone = True
            self.on_gone(f"its sweep's process died (sweep run {self.run_id} silent for "
                         f"{now - self.since:.0f} s); a rerun of the sweep resumes this run")


def wait_for_live_jobs(nums: Iterable[int], job_runs: Callable[[], Dict[int, List]],
                       stale_s: float = STALE_S, poll_s: float = INTERVAL_S / 2) -> None:
    """Return once every job of `nums` has a run that ended, or once nothing about their runs
    has changed for `stale_s`: no heartbeat, no new run (a job queued behind the others, or a
    launcher's retry of a dead one, starts its run well within that time).

    `job_runs()` reads job number -> that job's runs, newest first, from the store.
    """
    nums = sorted(set(nums))
    seen: Dict[int, tuple] = {}  # job number -> (run id, status, heartbeat) of its newest run
    last_change = time.monotonic()
    announced = False
    while True:
        runs = job_runs()
        now = time.monotonic()
        state = {n: (r.info.run_id, r.info.status, r.data.tags.get(HEARTBEAT))
                 for n in nums for r in runs.get(n, [])[:1]}
        if state != seen:
            seen, last_change = state, now
        running = [n for n, (_, status, _) in state.items() if status == "RUNNING"]
        if (len(state) == len(nums) and not running) or now - last_change >= stale_s:
            return
        if running and not announced:
            log.info("waiting for jobs %s, still running or dead (told apart by their heartbeats)",
                     ", ".join(f"#{n}" for n in running))
            announced = True
        time.sleep(poll_s)
