"""The guarantees under Hydra's submitit launcher (submitit_local): failures, a death, a job still
running when submitit gives up, a preempted job requeued and resumed exactly."""
import pytest

from commands import run_xlt
from faulty_sweeps import FE_SWEEP, rerun_finishes_the_failed, summary_rows, sweep_with_failures
from stores import metric_histories, mlflow_runs


@pytest.mark.heavy
@pytest.mark.slow
def test_the_guarantees_hold_under_hydras_submitit_launcher(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[slurm]'")
    sweep = [*FE_SWEEP, "hydra/launcher=submitit_local", f"output_dir={tmp_path}"]
    # submitit gives up on job 1 after its death; job 2 holds until the sweep has read it as running.
    _, jobs = sweep_with_failures(tmp_path, sweep, "raise:0,die:1,hold:2", waited_for="#1, #2")
    assert jobs[1].data.tags["xlt.error"].startswith("the job's process died")
    rerun_finishes_the_failed(tmp_path, sweep)


@pytest.mark.heavy
@pytest.mark.slow
def test_a_preempted_submitit_job_is_requeued_and_resumes_its_run_exactly(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[slurm]'")
    # Job 0 gets submitit's preemption signal at step 12: it checkpoints, submitit requeues it.
    sweep = ["-m", "experiment=smoke", "hydra.sweeper.params.technique=fine_tune", "train.seed=1",
             "hydra/launcher=submitit_local", f"output_dir={tmp_path}"]
    result = run_xlt(*sweep, fault="preempt:0:12")
    assert result.returncode == 0, result.stderr[-3000:]
    assert summary_rows(tmp_path) == {0: "FINISHED"}
    client, (run,) = mlflow_runs(tmp_path, "smoke")  # one run: the requeued job resumed it
    assert run.info.status == "FINISHED" and "xlt.checkpoint" not in run.data.tags
    log = "".join(p.read_text() for p in tmp_path.glob("multirun/*/.submitit/*/*_log.*"))
    assert "Requeued job" in log and f"resuming run {run.info.run_id}" in log

    straight = run_xlt("experiment=smoke", "technique=fine_tune", "train.seed=1", "tracking.experiment=straight",
                       f"output_dir={tmp_path}")
    assert straight.returncode == 0, straight.stderr[-3000:]
    _, (reference,) = mlflow_runs(tmp_path, "straight")
    assert metric_histories(client, run) == metric_histories(client, reference)
