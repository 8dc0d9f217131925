"""Sweeps of the tiny model with faults injected (tests/hooks), and how a test reads what they left: the
summary's rows, the runs by job number; a sweep with failures under a launcher, and its rerun."""
import re

from commands import run_xlt
from stores import aim_jobs, mlflow_runs

FE_SWEEP = ["-m", "experiment=smoke", "hydra.sweeper.params.technique=feature_extraction", "train.seed=1,2,3"]
FT_SWEEP = ["-m", "experiment=smoke", "hydra.sweeper.params.technique=fine_tune", "train.seed=1,2"]
# A hang guard, not a timing: Ray's faulty sweep (retrying a dying job) ran past 600 s in a slow hour.
SWEEP_TIMEOUT = 1200


def by_job(runs):
    return {int(r.data.tags["xlt.job_num"]): r for r in runs}


def summary_rows(output_dir):
    """{job number: status} from the newest sweep's summary.md."""
    (path,) = sorted(output_dir.glob("multirun/*/summary.md"), key=lambda p: p.stat().st_mtime)[-1:]
    rows = re.findall(r"^\| #(\d+) +\| [^|]+\| ([A-Z]+(?: STARTED)?)", path.read_text(), re.M)
    return {int(num): status for num, status in rows}


def sweep_with_failures(tmp_path, sweep, fault, waited_for):
    """Run a sweep of three jobs where jobs 0 and 1 fail and job 2 outlasts the launcher's
    giving up (`hold:2` in `fault`): the sweep waits for it, leaves nothing RUNNING and syncs all three to Aim."""
    result = run_xlt(*sweep, fault=fault, env={"XLT_FAULT_DIR": str(tmp_path)}, timeout=SWEEP_TIMEOUT)
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"waiting for jobs {waited_for}" in result.stdout + result.stderr
    assert summary_rows(tmp_path) == {0: "FAILED", 1: "FAILED", 2: "FINISHED"}
    client, runs = mlflow_runs(tmp_path, "smoke")
    jobs = by_job(runs)
    assert len(runs) == 3 and [jobs[n].info.status for n in (0, 1, 2)] == ["FAILED", "FAILED", "FINISHED"]
    assert sorted(run["mlflow"]["status"] for run in aim_jobs(tmp_path / "aim")) == ["FAILED", "FAILED", "FINISHED"]
    return client, jobs


def rerun_finishes_the_failed(tmp_path, sweep):
    again = run_xlt(*sweep, timeout=SWEEP_TIMEOUT)
    assert again.returncode == 0, again.stderr[-3000:]
    assert summary_rows(tmp_path) == {0: "FINISHED", 1: "FINISHED", 2: "SKIPPED"}
    _, runs = mlflow_runs(tmp_path, "smoke")
    assert sorted(r.info.status for r in runs) == ["FAILED", "FAILED"] + ["FINISHED"] * 3
