"""Exact resume mid-epoch (issue 39), in-process: a run stopped by SIGTERM mid-epoch, then the same job
again, logs what an uninterrupted run logs, every history equal. The tiny model with every selection
mode (`average_last`, whose averaged weights span the stop, in the default run), and the real encoder
with `train.select=dev`; a stop in each phase in real processes: tests/e2e/test_stops_in_each_phase.py."""
import sys

import mlflow
import pytest

from conftest import E5, HOOKS, XNLI, needs_shared
from jobs import run_job
from stores import metric_histories

COMMON = ["technique=fine_tune", "train.logging_steps=1", "train.eval_steps=2", "languages.eval=[en,de]",
          "tracking.aim.sync=false", "data.max_eval_samples=16", "data.max_test_samples=16"]
# 5 steps an epoch
TINY = ["model=tiny", "data=sample", "train.epochs=2", "train.batch_size=16", "train.max_train_samples=80"]
REAL = ["model=local", f"model.path={E5}", "model.pooling=mean", "data=jsonl", f"data.dir={XNLI}", "train.epochs=1",
        "train.batch_size=8", "train.select=dev", "train.max_train_samples=64"]  # 8 steps


def _histories(out, run_id):
    client = mlflow.MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    return metric_histories(client, client.get_run(run_id), skip=("runtime", "per_second", "seconds"))


def _stopped_at_step_3_then_resumed(tmp_path, monkeypatch, job):
    """The histories of the job stopped as step 3 ends (its checkpoint: step 4) and run again, and of
    the same job never stopped."""
    whole = run_job(tmp_path / "whole", *job)
    monkeypatch.syspath_prepend(str(HOOKS))
    sys.modules.pop("xlt_faults", None)
    import xlt.train.job

    import xlt_faults

    monkeypatch.setenv("XLT_FAULT", "sigterm:*:3")  # the job signals itself as step 3 ends
    monkeypatch.setattr(xlt.train.job, "build_trainer", xlt.train.job.build_trainer)  # restored by undo()
    xlt_faults._patch_trainer(xlt.train.job)
    with pytest.raises(KeyboardInterrupt, match="checkpoint-4"):
        run_job(tmp_path / "parts", *job)
    monkeypatch.undo()
    resumed = run_job(tmp_path / "parts", *job)
    return _histories(tmp_path / "parts", resumed["run_id"]), _histories(tmp_path / "whole", whole["run_id"])


def test_the_tiny_model_stopped_mid_epoch_resumes_to_an_uninterrupted_runs_histories(tmp_path, monkeypatch):
    parts, whole = _stopped_at_step_3_then_resumed(tmp_path, monkeypatch, [*COMMON, *TINY, "train.select=average_last"])
    assert [step for step, _ in parts["train/loss"]] == list(range(1, 11))  # step 4 of 10 is mid-epoch 1
    assert parts == whole


@pytest.mark.heavy  # the other selection modes: in CI's second run
@pytest.mark.parametrize("select", ["dev", "en_dev", "target_dev", "last"])
def test_every_selection_mode_resumes_mid_epoch_to_an_uninterrupted_runs_histories(tmp_path, monkeypatch, select):
    tiny = [*COMMON, *TINY, f"train.select={select}"]
    parts, whole = _stopped_at_step_3_then_resumed(tmp_path, monkeypatch, tiny)
    assert parts == whole, select


@pytest.mark.heavy  # the real encoder: in CI's second run
@needs_shared
def test_the_real_encoder_stopped_mid_epoch_resumes_to_an_uninterrupted_runs_histories(tmp_path, monkeypatch):
    parts, whole = _stopped_at_step_3_then_resumed(tmp_path, monkeypatch, [*COMMON, *REAL])
    assert [step for step, _ in parts["train/loss"]] == list(range(1, 9)) and len(parts["validation/de/loss"]) == 4
    assert parts == whole
