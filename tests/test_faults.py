"""Fault injection on the tiny model: failures, deaths and signals never cost a sweep more
than the jobs they hit, and a rerun picks up exactly where the sweep stopped."""
import re

import pytest

from conftest import aim_jobs, metric_histories, mlflow_runs, run_xlt

FE_SWEEP = ["-m", "experiment=smoke", "hydra.sweeper.params.technique=feature_extraction", "train.seed=1,2,3"]
FT_SWEEP = ["-m", "experiment=smoke", "hydra.sweeper.params.technique=fine_tune", "train.seed=1,2"]


def by_job(runs):
    return {int(r.data.tags["xlt.job_num"]): r for r in runs}


def summary_rows(output_dir):
    """{job number: status} from the newest sweep's summary.md."""
    (path,) = sorted(output_dir.glob("multirun/*/summary.md"), key=lambda p: p.stat().st_mtime)[-1:]
    rows = re.findall(r"^\| #(\d+) +\| [^|]+\| ([A-Z]+(?: STARTED)?)", path.read_text(), re.M)
    return {int(num): status for num, status in rows}


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


@pytest.mark.slow
def test_tokens_never_reach_mlflow(tmp_path):
    token, password = "hf_" + "Zq8" * 12, "s3cret-pw-1234"
    result = run_xlt("model=tiny", "data=sample", "technique=feature_extraction", "train.epochs=1",
                     f"+tracking.tags.note=token {token}", f"data.hub_id=https://ann:{password}@example.org/xnli",
                     f"output_dir={tmp_path}", env={"HF_TOKEN": token, "MLFLOW_TRACKING_PASSWORD": password})
    assert result.returncode == 0, result.stderr[-3000:]
    client, (run,) = mlflow_runs(tmp_path, "xlt")
    logged = [*run.data.params.values(), *run.data.tags.values()]
    for folder in ("config", "hydra"):
        for artifact in client.list_artifacts(run.info.run_id, folder):
            logged.append(open(client.download_artifacts(run.info.run_id, artifact.path)).read())
    assert len(logged) > 30 and any("***" in text for text in logged)
    assert not any(token in text or password in text for text in logged)


@pytest.mark.slow
def test_aims_own_callback_logs_languages_as_context(tmp_path):
    result = run_xlt("model=tiny", "data=sample", "technique=feature_extraction", "train.epochs=1",
                     "tracking.aim.callback=true", "tracking.aim.sync=false", f"output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    from aim import Repo

    assert not (tmp_path / "aim").exists()
    repo = Repo(str(tmp_path / "aim_callback"))
    (run,) = list(repo.iter_runs())
    assert run["xlt"]["technique"]["name"] == "feature_extraction"
    contexts = {(m.name, m.context.to_dict().get("subset"), m.context.to_dict().get("lang"))
                for m in repo.query_metrics("", report_mode=0)}
    assert {("accuracy", "validation", "zh"), ("accuracy", "test", "de"), ("runtime", "train", None)} <= contexts


def sweep_with_failures(tmp_path, sweep, fault, waited_for):
    """Run a sweep of three jobs where jobs 0 and 1 fail and job 2 outlasts the launcher's
    giving up: the sweep waits for it, leaves nothing RUNNING and syncs all three to Aim."""
    result = run_xlt(*sweep, fault=fault)
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"waiting for jobs {waited_for}" in result.stdout + result.stderr
    assert summary_rows(tmp_path) == {0: "FAILED", 1: "FAILED", 2: "FINISHED"}
    client, runs = mlflow_runs(tmp_path, "smoke")
    jobs = by_job(runs)
    assert len(runs) == 3 and [jobs[n].info.status for n in (0, 1, 2)] == ["FAILED", "FAILED", "FINISHED"]
    assert sorted(run["mlflow"]["status"] for run in aim_jobs(tmp_path / "aim")) == ["FAILED", "FAILED", "FINISHED"]
    return client, jobs


def rerun_finishes_the_failed(tmp_path, sweep):
    again = run_xlt(*sweep)
    assert again.returncode == 0, again.stderr[-3000:]
    assert summary_rows(tmp_path) == {0: "FINISHED", 1: "FINISHED", 2: "SKIPPED"}
    _, runs = mlflow_runs(tmp_path, "smoke")
    assert sorted(r.info.status for r in runs) == ["FAILED", "FAILED"] + ["FINISHED"] * 3


@pytest.mark.heavy
@pytest.mark.slow
def test_the_guarantees_hold_under_hydras_submitit_launcher(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[slurm]'")
    sweep = [*FE_SWEEP, "hydra/launcher=submitit_local", f"output_dir={tmp_path}"]
    # submitit gives up on job 1 about 30 s after its death; job 2 is still running then.
    _, jobs = sweep_with_failures(tmp_path, sweep, "raise:0,die:1,sleep:2:50", waited_for="#1, #2")
    assert jobs[1].data.tags["xlt.error"].startswith("the job's process died")
    rerun_finishes_the_failed(tmp_path, sweep)


@pytest.mark.heavy
@pytest.mark.slow
def test_the_guarantees_hold_under_hydras_joblib_launcher(tmp_path):
    # When a worker dies, joblib ends the others too: each is reported, none is left RUNNING.
    sweep = [*FE_SWEEP, "hydra/launcher=joblib", f"output_dir={tmp_path}"]
    result = run_xlt(*sweep, fault="raise:0,die:1")
    assert result.returncode == 1, result.stderr[-3000:]
    rows = summary_rows(tmp_path)
    assert rows[0] == rows[1] == "FAILED" and rows[2] in ("FAILED", "FINISHED")
    _, runs = mlflow_runs(tmp_path, "smoke")
    # loky ends the other workers when job 1 dies: a job it ended before its run started has no
    # run (its row says so); whichever runs started, none is left RUNNING. (Which jobs started
    # their runs first is a race between the workers.)
    assert 1 <= len(runs) <= 3 and {r.info.status for r in runs} <= {"FAILED", "FINISHED"}

    again = run_xlt(*sweep)
    assert again.returncode == 0, again.stderr[-3000:]
    assert set(summary_rows(tmp_path).values()) <= {"FINISHED", "SKIPPED"}


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


@pytest.mark.heavy
@pytest.mark.ray
@pytest.mark.slow
def test_the_guarantees_hold_under_hydras_ray_launcher(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="pip install -e '.[ray]'")
    from mlflow.entities import ViewType

    # A Ray of this machine on loopback, a slot per job. Job 0 dies each time Ray tries it, job 1
    # raises, job 2 is still running when Ray gives up on job 0: the sweep must wait for it.
    sweep = [*FE_SWEEP, "hydra/launcher=ray_local", "hydra.launcher.ray.init.num_cpus=3", f"output_dir={tmp_path}"]
    client, jobs = sweep_with_failures(tmp_path, sweep, "die:0,raise:1,sleep:2:40", waited_for="#0, #2")
    assert jobs[0].data.tags["xlt.error"].startswith("the job's process died")
    assert jobs[1].data.tags["xlt.error"] == "RuntimeError: injected failure in job 1"
    retried = client.search_runs([jobs[0].info.experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.data.tags["xlt.job_num"] for r in retried] == ["0"] * 3  # Ray's 3 retries left no duplicate
    rerun_finishes_the_failed(tmp_path, sweep)

    # Every metric has as many points as under xlt's own launcher.
    reference = run_xlt(*FE_SWEEP, "tracking.experiment=reference", f"output_dir={tmp_path}")
    assert reference.returncode == 0, reference.stderr[-3000:]

    def points(experiment):
        _, runs = mlflow_runs(tmp_path, experiment)
        return {r.data.params["train.seed"]: {name: len(points) for name, points in metric_histories(client, r).items()}
                for r in runs if r.info.status == "FINISHED"}

    assert points("smoke") == points("reference") and len(points("reference")) == 3


@pytest.mark.heavy
@pytest.mark.slow
def test_a_sweep_on_a_slurm_cluster_keeps_its_guarantees_and_requeues_a_preempted_job(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[slurm]'")
    from standins import SlurmCluster, slurm_missing

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
