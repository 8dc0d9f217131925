"""One live run per job, and no run left RUNNING by a dead process (issue 25, items 2 and 5):
leases on a job's config hash, heartbeats of jobs and sweeps, content hashes of local inputs.
Store-level units first, then real sweeps of the tiny model killed as a cluster kills them."""
import re
import shutil
import subprocess
import sys
import threading
import time

import mlflow
import pytest

from xlt.core import tags
from xlt.tracking.heartbeat import beating, seen_status, silence
from xlt.tracking.lease import Held, claim

from conftest import REPO, mlflow_runs, run_xlt


def _store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    return uri, client, client.create_experiment("x")


def _job_run(client, experiment, beat=None, start=None):
    """A job's RUNNING run of hash h1; `beat`: its last heartbeat (unix time), if any."""
    run = client.create_run(experiment, start_time=start, tags={tags.HASH: "h1"})
    if beat is not None:
        client.set_tag(run.info.run_id, tags.HEARTBEAT_S, "0.2")
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
    assert time.monotonic() - start < 3  # watched a beat and a half (0.3 s), no longer
    said = [(long_dead, r"no heartbeat for \d+ s\)"), (just_killed, r"no heartbeat for the 0.3 s it was watched\)")]
    for dead, silent in said:
        ended = client.get_run(dead.info.run_id)
        assert ended.info.status == "FAILED"
        assert re.fullmatch(f"its process died \\({silent}; run {mine.info.run_id} took over its job",
                            ended.data.tags[tags.ERROR])


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

    from standins import tiny_checkpoint

    model = tiny_checkpoint(tmp_path / "model", "bert", seed=0)
    cfg = _jsonl_config(tmp_path, tmp_path)
    cfg.data.source = "sample"
    cfg.model.source, cfg.model.path = "local", str(model)
    before = job_hash(cfg)
    tiny_checkpoint(tmp_path / "other", "bert", seed=1)
    shutil.copyfile(tmp_path / "other" / "model.safetensors", model / "model.safetensors")
    assert job_hash(cfg) != before


# -- real sweeps, killed -----------------------------------------------------------------------

LONG = ["-m", "experiment=smoke", "hydra.sweeper.params.technique=fine_tune", "train.seed=1", "train.epochs=12",
        "tracking.heartbeat_s=0.5", "tracking.aim.sync=false"]


def _no_run_left_running(tmp_path):
    _, runs = mlflow_runs(tmp_path, "smoke", parents=True)
    return [r.info.run_id for r in runs if r.info.status == "RUNNING"] == []


@pytest.mark.heavy
@pytest.mark.slow
def test_a_job_whose_sweep_was_killed_stops_with_a_checkpoint_and_the_rerun_resumes_it(tmp_path):
    """xlt's launcher runs each job in a process of its own: SIGKILL of the sweep leaves it running."""
    killed = run_xlt(*LONG, f"output_dir={tmp_path}", fault="sigkill-sweep:0:12")
    assert killed.returncode == -9, killed.stderr[-3000:]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the orphaned job notices within 6 beats, then saves and ends
        _, runs = mlflow_runs(tmp_path, "smoke")
        if runs and runs[0].info.status != "RUNNING":
            break
        time.sleep(1)
    (stopped,) = runs
    assert stopped.info.status == "KILLED", stopped.data.tags
    assert stopped.data.tags[tags.ERROR].startswith("its sweep's process died")
    steps = int(stopped.data.tags[tags.CHECKPOINT].rsplit("-", 1)[1])
    assert 12 < steps < 12 * 76  # stopped well before the end of its 12 epochs

    rerun = run_xlt(*LONG, f"output_dir={tmp_path}")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resuming run {stopped.info.run_id}" in rerun.stdout + rerun.stderr
    _, runs = mlflow_runs(tmp_path, "smoke")
    assert [(r.info.run_id, r.info.status) for r in runs] == [(stopped.info.run_id, "FINISHED")]
    _, with_parents = mlflow_runs(tmp_path, "smoke", parents=True)
    sweeps = sorted((r.data.tags.get(tags.ERROR, ""), r.info.status) for r in with_parents
                    if r.data.tags.get(tags.KIND) == "sweep")
    assert sweeps[0] == ("", "FINISHED") and sweeps[1][1] == "FAILED"  # the dead sweep's, ended by the rerun
    assert sweeps[1][0].startswith("its process died")


@pytest.mark.heavy
@pytest.mark.slow
def test_a_sweep_killed_with_its_job_is_taken_over_by_a_rerun_started_at_once(tmp_path):
    """Hydra's basic launcher runs the job in the sweep's process: both die, the run stays RUNNING
    with a heartbeat a moment old, and the rerun (started at once) must still take it over."""
    common = [*LONG, "hydra/launcher=basic", f"output_dir={tmp_path}"]
    killed = run_xlt(*common, fault="die-at:0:12")
    assert killed.returncode == -9, killed.stderr[-3000:]
    _, (dead,) = mlflow_runs(tmp_path, "smoke")
    assert dead.info.status == "RUNNING"

    rerun = run_xlt(*common)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    _, runs = mlflow_runs(tmp_path, "smoke")
    statuses = {r.info.run_id: r.info.status for r in runs}
    assert statuses.pop(dead.info.run_id) == "FAILED" and list(statuses.values()) == ["FINISHED"]
    error = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(dead.info.run_id).data.tags[tags.ERROR]
    assert error.startswith("its process died (no heartbeat for")  # ended by the sweep, or by the job's claim
    assert _no_run_left_running(tmp_path)


@pytest.mark.heavy
@pytest.mark.slow
def test_the_same_sweep_started_twice_trains_each_job_once(tmp_path):
    command = [sys.executable, str(REPO / "run.py"), *LONG[:4], "train.seed=1,2", *LONG[5:], f"output_dir={tmp_path}"]
    sweeps = [subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
              for _ in range(2)]
    said = [sweep.communicate(timeout=600)[0] for sweep in sweeps]
    assert [sweep.returncode for sweep in sweeps] == [0, 0], said[0][-2000:] + said[1][-2000:]
    _, runs = mlflow_runs(tmp_path, "smoke")
    assert sorted(r.data.params["train.seed"] for r in runs) == ["1", "2"]  # each job trained once
    assert {r.info.status for r in runs} == {"FINISHED"}
    summaries = [p.read_text() for p in tmp_path.glob("multirun/*/summary.md")]
    assert sum(s.count("| SKIPPED (run ") for s in summaries) == 2  # each sweep said whose run it was
    assert _no_run_left_running(tmp_path)


@pytest.mark.heavy
@pytest.mark.slow
def test_a_changed_training_file_reruns_the_job(tmp_path):
    from xlt.config.files import SAMPLE_DIR

    data = shutil.copytree(SAMPLE_DIR, tmp_path / "data")
    common = ["-m", "experiment=smoke", "hydra.sweeper.params.technique=feature_extraction", "data=jsonl",
              f"data.dir={data}", "languages.eval=[en,de]", "tracking.aim.sync=false", f"output_dir={tmp_path}"]
    assert run_xlt(*common).returncode == 0
    skipped = run_xlt(*common)
    assert "already finished with this config" in skipped.stdout + skipped.stderr
    rows = (data / "train.en.jsonl").read_text().splitlines()
    (data / "train.en.jsonl").write_text("\n".join(rows[: len(rows) // 2]) + "\n")
    rerun = run_xlt(*common)
    assert rerun.returncode == 0 and "already finished" not in rerun.stdout + rerun.stderr
    _, runs = mlflow_runs(tmp_path, "smoke")
    assert len(runs) == 2 and len({r.data.params["data.commit"] for r in runs}) == 2
    assert len({r.data.tags[tags.HASH] for r in runs}) == 2
