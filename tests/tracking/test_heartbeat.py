"""A sweep whose launcher lost a batch waits for the jobs still alive, told by their heartbeats."""
import threading
import time

import mlflow

from xlt.core.tags import HEARTBEAT as HEARTBEAT_TAG
from xlt.core.tags import SWEEP as SWEEP_TAG
from xlt.tracking.heartbeat import beating, wait_for_live_jobs
from xlt.tracking.store import sweep_job_runs


def _store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    return uri, client, client.create_experiment("x")


def _run(client, experiment, num):
    return client.create_run(experiment, tags={SWEEP_TAG: "s1", "xlt.job_num": str(num)}).info.run_id


def _job(uri, client, run_id, seconds, ready=None):
    """A job that trains for `seconds` with its heartbeat on, then finishes."""
    if ready is not None:
        ready.wait()
    with beating(uri, run_id, interval_s=0.05):
        time.sleep(seconds)
    client.set_terminated(run_id, "FINISHED")


def test_the_heartbeat_changes_while_the_job_runs_and_goes_with_it(tmp_path):
    uri, client, experiment = _store(tmp_path)
    run_id = _run(client, experiment, 0)
    with beating(uri, run_id, interval_s=0.05):
        time.sleep(0.3)
        first = client.get_run(run_id).data.tags[HEARTBEAT_TAG]
        time.sleep(0.3)
        then = client.get_run(run_id).data.tags[HEARTBEAT_TAG]
    assert float(then) > float(first) > time.time() - 5  # the writer's clock, in seconds
    time.sleep(0.2)
    assert HEARTBEAT_TAG not in client.get_run(run_id).data.tags  # no thread left writing it


def test_the_sweep_waits_for_live_and_queued_jobs_but_not_for_dead_ones(tmp_path):
    uri, client, experiment = _store(tmp_path)
    _run(client, experiment, 0)  # died: RUNNING, no heartbeat
    live = _run(client, experiment, 1)
    first_done = threading.Event()

    def queued():  # job 2 starts its run once job 1 frees its slot, as Ray or SLURM would start it
        first_done.wait()
        time.sleep(0.2)
        _job(uri, client, _run(client, experiment, 2), 1.0)

    threads = [threading.Thread(target=lambda: (_job(uri, client, live, 1.0), first_done.set())),
               threading.Thread(target=queued)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    wait_for_live_jobs([0, 1, 2], lambda: sweep_job_runs(uri, "x", "s1"), stale_s=0.6, poll_s=0.05)
    waited = time.monotonic() - start
    for thread in threads:
        thread.join()
    runs = sweep_job_runs(uri, "x", "s1")
    assert runs[1][0].info.status == runs[2][0].info.status == "FINISHED"  # both ended before the wait did
    assert runs[0][0].info.status == "RUNNING"  # the dead job's run is for the sweep to end
    assert 2.2 <= waited < 5


def test_the_sweep_does_not_wait_when_every_job_has_ended(tmp_path):
    uri, client, experiment = _store(tmp_path)
    for num in (0, 1):
        client.set_terminated(_run(client, experiment, num), "FAILED")
    start = time.monotonic()
    wait_for_live_jobs([0, 1], lambda: sweep_job_runs(uri, "x", "s1"), stale_s=30, poll_s=0.05)
    assert time.monotonic() - start < 5
