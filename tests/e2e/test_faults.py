"""Fault injection on the tiny model under xlt's own launcher: failures, deaths and signals never cost a
sweep more than the jobs they hit, and a rerun picks up exactly where it stopped. Under Hydra's other
launchers: test_submitit.py, test_joblib.py, test_ray.py, test_slurm.py."""
import re

import pytest

from commands import run_xlt
from faulty_sweeps import FE_SWEEP, FT_SWEEP, by_job, summary_rows
from stores import aim_jobs, metric_histories, mlflow_runs


@pytest.mark.heavy  # in CI's second run: the default run stays under 10 minutes
@pytest.mark.slow
def test_a_failing_and_a_dying_job_do_not_stop_the_sweep(tmp_path):
    result = run_xlt(*FE_SWEEP, f"output_dir={tmp_path}", fault="raise:0,die:1")
    assert result.returncode == 1, result.stderr[-3000:]
    assert summary_rows(tmp_path) == {0: "FAILED", 1: "FAILED", 2: "FINISHED"}
    assert "| #1 " in result.stdout and "SIGKILL" in result.stdout  # the table is printed too
    client, runs = mlflow_runs(tmp_path, "smoke")
    jobs = by_job(runs)
    assert [jobs[n].info.status for n in (0, 1, 2)] == ["FAILED", "FAILED", "FINISHED"]
    assert jobs[0].data.tags["xlt.error"] == "RuntimeError: injected failure in job 0"
    traceback = open(client.download_artifacts(jobs[0].info.run_id, "error/traceback.txt")).read()
    assert traceback.startswith("Traceback") and "at_job_start" in traceback
    assert "killed by SIGKILL" in jobs[1].data.tags["xlt.error"]  # marked by the sweep, not left RUNNING
    _, with_parent = mlflow_runs(tmp_path, "smoke", parents=True)
    assert [r.info.status for r in with_parent if r.data.tags.get("xlt.kind") == "sweep"] == ["FAILED"]

    statuses = sorted(run["mlflow"]["status"] for run in aim_jobs(tmp_path / "aim"))
    assert statuses == ["FAILED", "FAILED", "FINISHED"]

    # The same command again: the finished job is skipped, the others rerun.
    again = run_xlt(*FE_SWEEP, f"output_dir={tmp_path}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert re.search(r"Skipping #2 \(.*train\.seed=3.*\): run \w+ already finished", again.stderr + again.stdout)
    assert summary_rows(tmp_path) == {0: "FINISHED", 1: "FINISHED", 2: "SKIPPED"}
    _, runs = mlflow_runs(tmp_path, "smoke")
    assert sorted(r.info.status for r in runs) == ["FAILED", "FAILED"] + ["FINISHED"] * 3

    forced = run_xlt("-m", "experiment=smoke", "hydra.sweeper.params.technique=feature_extraction",
                     "train.seed=3", "sweep.skip_finished=false", f"output_dir={tmp_path}")
    assert forced.returncode == 0 and summary_rows(tmp_path) == {0: "FINISHED"}
    _, runs = mlflow_runs(tmp_path, "smoke")
    assert sum(r.data.params["train.seed"] == "3" and r.info.status == "FINISHED" for r in runs) == 2


@pytest.mark.heavy
@pytest.mark.slow
def test_sigterm_stops_the_sweep_and_the_rerun_resumes_exactly(tmp_path):
    # Job 0 sends SIGTERM to the sweep at step 30, as a cluster scheduler would.
    stopped = run_xlt(*FT_SWEEP, f"output_dir={tmp_path}", fault="sigterm-sweep:0:30")
    assert stopped.returncode == 130, stopped.stderr[-3000:]
    assert summary_rows(tmp_path) == {0: "KILLED", 1: "NOT STARTED"}
    client, (killed,) = mlflow_runs(tmp_path, "smoke")
    checkpoint = killed.data.tags["xlt.checkpoint"]
    assert killed.info.status == "KILLED" and "0_tiny_fine_tune/checkpoints/checkpoint-" in checkpoint
    step = int(checkpoint.rsplit("-", 1)[1])  # the first step to end after the signal reached the job
    assert step > 30 and max(s for s, _ in metric_histories(client, killed)["train/loss"]) <= step
    _, with_parent = mlflow_runs(tmp_path, "smoke", parents=True)
    assert [r.info.status for r in with_parent if r.data.tags.get("xlt.kind") == "sweep"] == ["KILLED"]

    resumed = run_xlt(*FT_SWEEP, f"output_dir={tmp_path}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming run {killed.info.run_id}" in resumed.stdout + resumed.stderr
    _, runs = mlflow_runs(tmp_path, "smoke")
    jobs = by_job(runs)
    assert len(runs) == 2 and jobs[0].info.run_id == killed.info.run_id
    assert {r.info.status for r in runs} == {"FINISHED"}

    straight = run_xlt("experiment=smoke", "technique=fine_tune", "train.seed=1", "tracking.experiment=straight",
                       f"output_dir={tmp_path}")
    assert straight.returncode == 0, straight.stderr[-3000:]
    _, (reference,) = mlflow_runs(tmp_path, "straight")
    assert metric_histories(client, jobs[0]) == metric_histories(client, reference)


@pytest.mark.heavy  # a real process's stop; the default run keeps the in-process stops (tests/train)
@pytest.mark.slow
def test_ctrl_c_in_a_single_run_saves_a_checkpoint(tmp_path):
    result = run_xlt("experiment=smoke", "technique=fine_tune", f"output_dir={tmp_path}", fault="sigterm:*:12")
    assert result.returncode == 130
    # Signalled at the end of step 12, it stops at the end of the next optimizer step, before any
    # logging step (train.logging_steps=5).
    assert "checkpoint saved at" in result.stderr and "checkpoint-13" in result.stderr
    assert "Traceback" not in result.stderr
    _, (run,) = mlflow_runs(tmp_path, "smoke")
    assert run.info.status == "KILLED" and run.data.tags["xlt.checkpoint"].endswith("checkpoint-13")
