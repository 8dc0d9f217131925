"""The guarantees under Hydra's joblib launcher: when a worker dies, joblib ends the others too."""
import pytest

from commands import run_xlt
from faulty_sweeps import FE_SWEEP, summary_rows
from stores import mlflow_runs


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
