"""One live run per job, and no run left RUNNING by a dead process (issue 25, items 2 and 5):
leases on a job's config hash, heartbeats of jobs and sweeps, content hashes of local inputs.
Store-level units; real sweeps killed as a cluster kills them are in tests/e2e/test_killed_sweeps.py."""
import re
import shutil
import socket
import threading
import time

import mlflow
import pytest

from xlt.core import tags
from xlt.tracking.heartbeat import beating, seen_status, silence
from xlt.tracking.lease import Held, claim


def _store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    return uri, client, client.create_experiment("x")


def _job_run(client, experiment, beat=None, start=None, host=None):
    """A job's RUNNING run of hash h1; `beat`: its last heartbeat (unix time by its writer's clock),
    if any, written on `host` (default: this one)."""
    run = client.create_run(experiment, start_time=start, tags={tags.HASH: "h1"})
    if beat is not None:
        client.set_tag(run.info.run_id, tags.HEARTBEAT_S, "0.2")
        client.set_tag(run.info.run_id, tags.HEARTBEAT_HOST, host or socket.gethostname())
        client.set_tag(run.info.run_id, tags.HEARTBEAT, f"{beat:.3f}")
    return client.get_run(run.info.run_id)


def test_a_live_run_that_started_first_holds_the_job(tmp_path):
    uri, client, experiment = _store(tmp_path)
    first = _job_run(client, experiment)
    with beating(uri, first.info.run_id, interval_s=0.2):
        time.sleep(0.05)
        second = _job_run(client, experiment, beat=time.time())
        with pytest.raises(Held, match=f"run {first.info.run_id} is running this job") as held:
            claim(uri, second, "h1")
        assert held.value.run_id == first.info.run_id
        claim(uri, client.get_run(first.info.run_id), "h1")  # the first one keeps it
    assert client.get_run(first.info.run_id).info.status == "RUNNING"  # nothing ended by the claims


def test_a_run_whose_heartbeat_stopped_is_ended_failed_and_its_job_taken_over(tmp_path):
    uri, client, experiment = _store(tmp_path)
    long_dead = _job_run(client, experiment, beat=time.time() - 60)  # silent for 300 beats
    just_killed = _job_run(client, experiment, beat=time.time())  # its beat is fresh but will not change
    mine = _job_run(client, experiment, beat=time.time())
    start = time.monotonic()
    claim(uri, mine, "h1")
    assert time.monotonic() - start < 5  # watched MIN_WATCH_S (a beat and a half is less), no longer
    # The one killed a moment ago is found as this host's clock passes its 6 beats (1.2 s), within the watch.
    said = [(long_dead, r"no heartbeat for \d+ s\)"), (just_killed, r"no heartbeat for [12] s\)")]
    for dead, silent in said:
        ended = client.get_run(dead.info.run_id)
        assert ended.info.status == "FAILED"
        assert re.fullmatch(f"its process died \\({silent}; run {mine.info.run_id} took over its job",
                            ended.data.tags[tags.ERROR])


def test_another_hosts_run_is_judged_by_its_beat_changing_never_by_comparing_clocks(tmp_path):
    """Issue 39: hosts sharing a store with clocks a minute apart took live runs for dead."""
    from xlt.tracking.store import end_dead_runs

    uri, client, experiment = _store(tmp_path)
    behind = _job_run(client, experiment, beat=time.time() - 120, host="elsewhere")  # its clock 2 minutes behind
    stopped = _job_run(client, experiment, beat=time.time() + 120, host="elsewhere")  # ahead, and no longer beating
    done = threading.Event()

    def beat_behind():  # alive: its beat changes every 0.2 s, by a clock 120 s behind this one
        while not done.wait(0.2):
            client.set_tag(behind.info.run_id, tags.HEARTBEAT, f"{time.time() - 120:.3f}")

    thread = threading.Thread(target=beat_behind)
    thread.start()
    try:
        assert end_dead_runs(uri, "x") == []  # a sweep's start ends no other host's run by its clock
        mine = _job_run(client, experiment, beat=time.time())
        with pytest.raises(Held, match=f"run {behind.info.run_id} is running this job"):
            claim(uri, mine, "h1")
    finally:
        done.set()
        thread.join()
    ended = client.get_run(stopped.info.run_id)
    assert ended.info.status == "FAILED" and "no heartbeat for the 2 s it was watched" in ended.data.tags[tags.ERROR]
    assert client.get_run(behind.info.run_id).info.status == "RUNNING"


def test_a_finished_run_holds_the_job_unless_skip_finished_is_off(tmp_path):
    uri, client, experiment = _store(tmp_path)
    done = _job_run(client, experiment)
    client.set_terminated(done.info.run_id, "FINISHED")
    mine = _job_run(client, experiment, beat=time.time())
    with pytest.raises(Held, match="finished this job meanwhile"):
        claim(uri, mine, "h1")
    claim(uri, mine, "h1", finished_holds=False)


def test_two_processes_resuming_one_run_leave_it_to_one(tmp_path):
    uri, client, experiment = _store(tmp_path)
    run = _job_run(client, experiment, beat=time.time())
    outcomes = []

    def resume():
        try:
            claim(uri, client.get_run(run.info.run_id), "h1", resumed=True)
            outcomes.append("runs")
        except Held as held:
            outcomes.append(held.run_id)

    threads = [threading.Thread(target=resume) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == sorted(["runs", run.info.run_id])


def test_readers_show_a_running_run_whose_heartbeat_stopped_as_failed(tmp_path):
    from xlt.report.results import run_table

    uri, client, experiment = _store(tmp_path)
    dead, live = _job_run(client, experiment, beat=time.time() - 60), _job_run(client, experiment, beat=time.time())
    old = _job_run(client, experiment, start=int((time.time() - 3600) * 1000))  # never beat, started an hour ago
    assert silence(dead) > 59 and silence(live) is None and silence(old) > 3599
    assert [seen_status(r) for r in (dead, live, old)] == ["FAILED", "RUNNING", "FAILED"]
    table = run_table([dead, live]).set_index("run_id")
    assert table.loc[dead.info.run_id, "status"] == "FAILED"
    assert table.loc[dead.info.run_id, "error"].startswith("its process died (no heartbeat for 6")
    assert table.loc[live.info.run_id, "status"] == "RUNNING"


# -- local inputs: their contents are the job's identity ---------------------------------------

def _jsonl_config(tmp_path, data):
    from xlt.config import ProtocolConfig, TechniqueConfig, XltConfig

    cfg = XltConfig(output_dir=str(tmp_path / "out"), technique=TechniqueConfig(name="fine_tune"),
                    protocol=ProtocolConfig(name="zero_shot"))
    cfg.data.source, cfg.data.dir, cfg.languages.eval = "jsonl", str(data), ["en"]
    return cfg


def test_a_changed_local_file_changes_the_job_hash_and_an_unchanged_one_is_not_reread(tmp_path, monkeypatch):
    from xlt.config.files import SAMPLE_DIR
    from xlt.data import identity

    data = shutil.copytree(SAMPLE_DIR, tmp_path / "data")
    cfg = _jsonl_config(tmp_path, data)
    before = identity.job_hash(cfg)
    read = []
    monkeypatch.setattr(identity, "_digest", lambda path, real=identity._digest: read.append(path) or real(path))
    assert identity.job_hash(cfg) == before and read == []  # cached by size and mtime
    rows = (data / "train.en.jsonl").read_text().splitlines()
    (data / "train.en.jsonl").write_text("\n".join(rows[:-1]) + "\n")
    after = identity.job_hash(cfg)
    assert after != before and read == [(data / "train.en.jsonl").resolve()]
    assert identity.inputs_identity(cfg)["data"].startswith("sha256:")


def test_a_retrained_local_model_at_the_same_path_changes_the_job_hash(tmp_path):
    from xlt.data.identity import job_hash

    from standins.checkpoints import tiny_checkpoint

    model = tiny_checkpoint(tmp_path / "model", "bert", seed=0)
    cfg = _jsonl_config(tmp_path, tmp_path)
    cfg.data.source = "sample"
    cfg.model.source, cfg.model.path = "local", str(model)
    before = job_hash(cfg)
    tiny_checkpoint(tmp_path / "other", "bert", seed=1)
    shutil.copyfile(tmp_path / "other" / "model.safetensors", model / "model.safetensors")
    assert job_hash(cfg) != before


def test_a_retried_job_replaces_the_run_its_dead_attempt_left(tmp_path):
    import mlflow

    from xlt.core.tags import SWEEP as SWEEP_TAG
    from xlt.tracking.store import replace_dead_attempts, sweep_job_runs

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("x")
    tags = {SWEEP_TAG: "s1", "xlt.job_num": "3"}
    dead = client.create_run(experiment, tags=tags)  # its process died: left RUNNING
    other = client.create_run(experiment, tags={**tags, "xlt.job_num": "4"})
    assert replace_dead_attempts(uri, "x", "s1", 3) == [dead.info.run_id]
    assert client.get_run(dead.info.run_id).info.lifecycle_stage == "deleted"
    assert set(sweep_job_runs(uri, "x", "s1")) == {4} and client.get_run(other.info.run_id).info.status == "RUNNING"
