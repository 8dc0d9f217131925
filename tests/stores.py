"""What a test reads back from an MLflow store, an Aim repository and a report."""
from pathlib import Path


def metric_histories(client, run, skip=("runtime", "per_second")):
    """Every metric of a run as {name: [(step, value), ...]}, wall-clock ones left out."""
    return {name: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, name)]
            for name in run.data.metrics if not name.endswith(skip)}


def runs_once_ended(output_dir: Path, experiment: str, timeout_s: float = 120):
    """`mlflow_runs` once the first job run has ended (a job left running by its killed sweep notices
    within a few beats, then ends), or as they are after `timeout_s`."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        client, runs = mlflow_runs(output_dir, experiment)
        if (runs and runs[0].info.status != "RUNNING") or time.monotonic() > deadline:
            return client, runs
        time.sleep(1)


def mlflow_runs(output_dir: Path, experiment: str, parents: bool = False):
    """The experiment's job runs; with `parents`, the sweeps' parent runs (holding reports) too."""
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{output_dir / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id]) if exp else []
    return client, [r for r in runs if parents or r.data.tags.get("xlt.kind") != "sweep"]


def aim_jobs(repo_dir: Path) -> list:
    """The Aim runs of an xlt sync that hold jobs (a sweep's parent run, `xlt.kind: sweep`, left out)."""
    from aim import Repo

    return [run for run in Repo(str(repo_dir)).iter_runs() if run["tags"].get("xlt.kind") != "sweep"]


def assert_findings_heed_alarms(markdown: str, runs) -> str:
    """A report's findings rank only runs without alarms: they say how many were left out, or that
    there is no finding when every run has one. Returns the findings section."""
    findings = markdown.split("## Findings")[1].split("\n## ")[0]
    finished = [r for r in runs if r.info.status == "FINISHED"]
    alarmed = [r for r in finished if r.data.tags.get("xlt.alarms")]
    if len(alarmed) == len(finished):
        assert f"No finding: every finished run ({len(finished)}) carries an alarm" in findings, findings
    elif alarmed:
        assert f"{len(alarmed)} of {len(finished)} finished runs are left out of these findings" in findings, findings
    return findings
