"""The guarantees under Hydra's Ray launcher, on a Ray of this machine on loopback."""
import pytest

from faulty_sweeps import FE_SWEEP, rerun_finishes_the_failed, sweep_with_failures
from jobs import run_job
from stores import metric_histories, mlflow_runs


@pytest.mark.heavy
@pytest.mark.ray
@pytest.mark.slow
def test_the_guarantees_hold_under_hydras_ray_launcher(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="pip install -e '.[ray]'")
    from mlflow.entities import ViewType

    # A Ray of this machine on loopback, a slot per job. Job 0 dies each time Ray tries it, job 1
    # raises, job 2 holds until the sweep, Ray having given up on job 0 after its retries, has read it as
    # still running: the sweep must wait for it.
    sweep = [*FE_SWEEP, "hydra/launcher=ray_local", "hydra.launcher.ray.init.num_cpus=3", f"output_dir={tmp_path}"]
    client, jobs = sweep_with_failures(tmp_path, sweep, "die:0,raise:1,hold:2", waited_for="#0, #2")
    assert jobs[0].data.tags["xlt.error"].startswith("the job's process died")
    assert jobs[1].data.tags["xlt.error"] == "RuntimeError: injected failure in job 1"
    retried = client.search_runs([jobs[0].info.experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.data.tags["xlt.job_num"] for r in retried] == ["0"] * 3  # Ray's 3 retries left no duplicate
    rerun_finishes_the_failed(tmp_path, sweep)

    # Every metric has as many points as a job run by xlt itself (in this process: the count is the config's).
    def point_counts(run):
        return {name: len(points) for name, points in metric_histories(client, run).items()}

    run_job(tmp_path, "experiment=smoke", "technique=feature_extraction", "train.seed=1",
            "tracking.experiment=reference", "tracking.aim.sync=false")
    _, (reference,) = mlflow_runs(tmp_path, "reference")
    _, runs = mlflow_runs(tmp_path, "smoke")
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert len(finished) == 3 and len(point_counts(reference)) > 20
    assert all(point_counts(run) == point_counts(reference) for run in finished)
