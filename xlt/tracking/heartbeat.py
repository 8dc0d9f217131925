"""Which jobs of a sweep are still alive, told from the MLflow store alone.

A launcher that loses a job (submitit's UncompletedJobError, Ray's WorkerCrashedError,
joblib's TerminatedWorkerError) raises at once and drops every result of its batch, while the
batch's other jobs may still be training or queued behind them. Each job's run therefore
carries a heartbeat, the tag `xlt.heartbeat`, rewritten every `INTERVAL_S` seconds; the sweep
waits while some run's tag still changes and only then settles the batch. The tag is compared with what the sweep saw
before, never with its own clock, so the jobs' machines need no common time.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Callable, Dict, Iterable, Iterator, List

from xlt.core.tags import HEARTBEAT

log = logging.getLogger(__name__)
INTERVAL_S = 10.0
STALE_S = 3 * INTERVAL_S  # a run whose tag has not changed for this long has no live writer


@contextmanager
def beating(uri: str, run_id: str, interval_s: float = INTERVAL_S) -> Iterator[None]:
    """Rewrite the run's heartbeat tag every `interval_s` seconds while the block runs."""
    import mlflow

    client, done = mlflow.MlflowClient(uri), threading.Event()

    def beat() -> None:
        count = 0
        while not done.is_set():
            count += 1
            try:
                client.set_tag(run_id, HEARTBEAT, str(count))
            except Exception as e:  # noqa: BLE001 - a busy store: the next beat tries again
                log.debug("heartbeat of %s: %s", run_id, e)
            done.wait(interval_s)

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
