"""A sweep on a one-node SLURM cluster (tests/standins/slurm.py): its guarantees, a preempted job requeued."""
import pytest

from commands import run_xlt
from faulty_sweeps import by_job, summary_rows
from stores import metric_histories, mlflow_runs


@pytest.mark.heavy
@pytest.mark.slow
def test_a_sweep_on_a_slurm_cluster_keeps_its_guarantees_and_requeues_a_preempted_job(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[slurm]'")
    from standins.slurm import SlurmCluster, slurm_missing

    if slurm_missing():
        pytest.skip(slurm_missing())
    cluster = SlurmCluster()
    try:
        # xlt's SLURM preset, sized for this one-node cluster: no GPU, a CPU per job.
        sweep = ["-m", "experiment=smoke", "hydra.sweeper.params.technique=fine_tune", "train.seed=1,2",
                 "hydra/launcher=slurm", "hydra.launcher.gpus_per_node=null", "hydra.launcher.cpus_per_task=1",
                 "hydra.launcher.mem_gb=2", f"output_dir={tmp_path}"]
        # Job 0 raises; job 1 is preempted at step 12: SLURM requeues it (it starts again about
        # 2 minutes later, SLURM's requeue delay) and it resumes its run from the checkpoint.
        result = run_xlt(*sweep, fault="raise:0,preempt:1:12", env=cluster.env)
        assert result.returncode == 1, result.stderr[-3000:]
        assert summary_rows(tmp_path) == {0: "FAILED", 1: "FINISHED"}
        client, runs = mlflow_runs(tmp_path, "smoke")
        jobs = by_job(runs)
        assert len(runs) == 2 and [jobs[n].info.status for n in (0, 1)] == ["FAILED", "FINISHED"]
        (log,) = [p.read_text() for p in tmp_path.glob("multirun/*/.submitit/*_1/*_1_0_log.out")]
        assert "Requeued job" in log and f"resuming run {jobs[1].info.run_id}" in log
        assert "Traceback" not in log  # the old instance ignores SLURM's SIGTERM once requeued

        straight = run_xlt("experiment=smoke", "technique=fine_tune", "train.seed=2", "tracking.experiment=straight",
                           f"output_dir={tmp_path}")
        assert straight.returncode == 0, straight.stderr[-3000:]
        _, (reference,) = mlflow_runs(tmp_path, "straight")
        assert metric_histories(client, jobs[1]) == metric_histories(client, reference)

        again = run_xlt(*sweep, env=cluster.env)
        assert again.returncode == 0, again.stderr[-3000:]
        assert summary_rows(tmp_path) == {0: "FINISHED", 1: "SKIPPED"}
    finally:
        cluster.stop()
