"""Real sweeps of the tiny model killed as a cluster kills them (issue 25): no run left RUNNING, no job
trained twice, a changed input reruns its job. The leases' units are in tests/tracking/test_leases.py."""
import shutil
import subprocess
import sys

import mlflow
import pytest

from xlt.core import tags

from commands import run_xlt
from conftest import REPO
from stores import mlflow_runs, runs_once_ended

LONG = ["-m", "experiment=smoke", "hydra.sweeper.params.technique=fine_tune", "train.seed=1", "train.epochs=4",
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
    _, (stopped,) = runs_once_ended(tmp_path, "smoke")  # the orphaned job notices within 6 beats, saves, ends
    assert stopped.info.status == "KILLED", stopped.data.tags
    assert stopped.data.tags[tags.ERROR].startswith("its sweep's process died")
    steps = int(stopped.data.tags[tags.CHECKPOINT].rsplit("-", 1)[1])
    assert 12 < steps < 4 * 76  # stopped well before the end of its 4 epochs

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
def test_a_job_killed_after_training_is_resumed_at_testing_and_trains_no_step_again(tmp_path):
    """SIGKILL as testing starts (a SLURM time limit, the out-of-memory killer): the weights kept as
    training ended are tested by the rerun; its step history is the first attempt's."""
    common = [*LONG, "train.epochs=2", f"output_dir={tmp_path}"]
    killed = run_xlt(*common, fault="die-testing:0")
    assert killed.returncode == 1, killed.stderr[-3000:]
    _, (dead,) = mlflow_runs(tmp_path, "smoke")
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    losses = [(m.step, m.value) for m in client.get_metric_history(dead.info.run_id, "train/loss")]
    assert dead.info.status == "FAILED" and dead.data.tags[tags.CHECKPOINT] and losses

    rerun = run_xlt(*common)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resuming run {dead.info.run_id} at testing" in rerun.stdout + rerun.stderr
    _, (run,) = mlflow_runs(tmp_path, "smoke")
    assert (run.info.run_id, run.info.status) == (dead.info.run_id, "FINISHED")
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train/loss")] == losses
    assert "test/target_mean/accuracy" in run.data.metrics and _no_run_left_running(tmp_path)


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
