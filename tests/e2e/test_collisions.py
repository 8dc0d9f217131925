"""Sweeps that meet: started in the same second, or finding a checkpoint another run wrote
(issue 25). Real processes on the tiny model."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from commands import run_xlt
from conftest import REPO
from stores import mlflow_runs


@pytest.mark.heavy
@pytest.mark.slow
def test_two_sweeps_started_together_never_share_a_directory(tmp_path):
    """Hydra's default sweep directory is the start time to the second: two sweeps started together
    wrote into one. Each job's snapshot must hold its own config."""
    common = [sys.executable, str(REPO / "run.py"), "-m", "experiment=smoke",
              "hydra.sweeper.params.technique=fine_tune", "train.max_train_samples=32", "train.epochs=1",
              "languages.eval=[en]", "tracking.aim.sync=false", f"output_dir={tmp_path}"]
    sweeps = [subprocess.Popen([*common, f"train.seed={seed}"], cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    for sweep in sweeps:
        assert sweep.wait(timeout=600) == 0, sweep.stderr.read()[-3000:]
    dirs = sorted((tmp_path / "multirun").iterdir())
    assert len(dirs) == 2 and all(re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_[a-z0-9]{6}", d.name) for d in dirs)
    _, runs = mlflow_runs(tmp_path, "smoke")
    assert sorted(r.data.params["train.seed"] for r in runs) == ["1", "2"]
    for run in runs:
        snapshot = yaml.safe_load(open(f"{run.data.tags['xlt.job_dir']}/.hydra/config.yaml"))
        assert str(snapshot["train"]["seed"]) == run.data.params["train.seed"]


@pytest.mark.heavy
@pytest.mark.slow
def test_a_checkpoint_another_run_wrote_is_never_resumed(tmp_path):
    common = ["experiment=smoke", "technique=fine_tune", "train.seed=1", f"output_dir={tmp_path}"]
    stopped = run_xlt(*common, fault="sigterm:*:12")
    assert stopped.returncode == 130, stopped.stderr[-3000:]
    _, (killed,) = mlflow_runs(tmp_path, "smoke")
    checkpoint = killed.data.tags["xlt.checkpoint"]
    owner = f"{checkpoint}/xlt_run_id"
    assert open(owner).read() == killed.info.run_id
    with open(owner, "w") as f:  # as if a sweep sharing the directory had overwritten it
        f.write("0123456789abcdef")

    rerun = run_xlt(*common)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    said = rerun.stdout + rerun.stderr
    assert f"not resuming run {killed.info.run_id}: {checkpoint} was not written by it" in said
    assert "resuming run" not in said.replace("not resuming run", "")
    _, runs = mlflow_runs(tmp_path, "smoke")
    statuses = {r.info.run_id: r.info.status for r in runs}
    assert statuses.pop(killed.info.run_id) == "KILLED" and list(statuses.values()) == ["FINISHED"]


@pytest.mark.heavy
@pytest.mark.slow
def test_a_damaged_checkpoint_starts_the_job_afresh_and_keeps_the_old_run(tmp_path):
    """A file of the checkpoint is gone: one notice, a new run that finishes, the old one still
    KILLED with its checkpoint tag (nothing logged is lost), and no FAILED run."""
    common = ["experiment=smoke", "technique=feature_extraction", "train.seed=1", f"output_dir={tmp_path}"]
    stopped = run_xlt(*common, fault="sigterm:*:12")
    assert stopped.returncode == 130, stopped.stderr[-3000:]
    _, (killed,) = mlflow_runs(tmp_path, "smoke")
    checkpoint = killed.data.tags["xlt.checkpoint"]
    (Path(checkpoint) / "optimizer.pt").unlink()

    rerun = run_xlt(*common)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    said = rerun.stdout + rerun.stderr
    assert f"not resuming run {killed.info.run_id}: {checkpoint} lacks optimizer.pt; the job starts afresh" in said
    _, runs = mlflow_runs(tmp_path, "smoke")
    old = next(r for r in runs if r.info.run_id == killed.info.run_id)
    assert old.info.status == "KILLED" and old.data.tags["xlt.checkpoint"] == checkpoint
    assert sorted(r.info.status for r in runs) == ["FINISHED", "KILLED"]
