"""A job stopped after it has trained never trains again (issue 39): the weights it would test are kept
as training ends, and the rerun of the same command resumes at testing. In-process: outside the
training loop a first SIGTERM or Ctrl-C raises KeyboardInterrupt where the job is (xlt.train.interrupt),
which is what each phase's stop raises here; tests/e2e/test_killed_sweeps.py kills a real job there."""
from pathlib import Path

import mlflow
import pytest

from xlt.tracking.store import TRAINED_MARKER

from jobs import run_job
from stores import mlflow_runs

JOB = ["model=tiny", "data=sample", "technique=fine_tune", "train.epochs=2", "train.select=dev",
       "languages.eval=[en,de]", "train.save=selected", "tracking.aim.sync=false", "train.max_train_samples=160",
       "data.max_eval_samples=40", "data.max_test_samples=40"]


def stopping(monkeypatch, target: str):
    """`target` (module.function) raises KeyboardInterrupt the first time it is called."""
    module, _, name = target.rpartition(".")
    original = getattr(pytest.importorskip(module), name)

    def stop(*args, **kwargs):
        monkeypatch.setattr(f"{module}.{name}", original)
        raise KeyboardInterrupt

    monkeypatch.setattr(target, stop)


def history(uri, run_id, name="train/loss"):
    return [(m.step, m.value) for m in mlflow.MlflowClient(uri).get_metric_history(run_id, name)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    result = run_job(out, *JOB)
    return f"sqlite:///{out / 'mlflow.db'}", result["run_id"]


@pytest.mark.parametrize("phase, target", [
    ("testing", "xlt.train.job.save_predictions"),  # the test metrics partly logged
    ("logging the predictions", "mlflow.log_artifact"),
    ("saving the selected weights", "xlt.train.job.save_selected"),
])
def test_a_stop_after_training_resumes_at_testing_with_the_uninterrupted_runs_numbers(
        tmp_path, monkeypatch, caplog, uninterrupted, phase, target):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    stopping(monkeypatch, target)
    with pytest.raises(KeyboardInterrupt):
        run_job(tmp_path, *JOB)
    _, (stopped,) = mlflow_runs(tmp_path, "xlt")
    checkpoint = Path(stopped.data.tags["xlt.checkpoint"])
    assert stopped.info.status == "KILLED" and (checkpoint / TRAINED_MARKER).is_file(), phase
    trained = history(uri, stopped.info.run_id)

    caplog.clear()
    caplog.set_level("INFO", logger="xlt")
    again = run_job(tmp_path, *JOB)
    assert again["run_id"] == stopped.info.run_id  # the same run, continued
    assert "at testing: it had finished training" in caplog.text
    assert history(uri, again["run_id"]) == trained  # no training step ran again
    whole_uri, whole_id = uninterrupted
    assert history(uri, again["run_id"]) == history(whole_uri, whole_id)
    metrics = mlflow.MlflowClient(uri).get_run(again["run_id"]).data.metrics
    expected = mlflow.MlflowClient(whole_uri).get_run(whole_id).data.metrics
    tested = {k for k in expected if k.startswith(("test/", "test_last/")) and not k.endswith("runtime")}
    assert {k: metrics[k] for k in tested} == pytest.approx({k: expected[k] for k in tested})
    finished = mlflow.MlflowClient(uri).get_run(again["run_id"])
    assert finished.info.status == "FINISHED" and "xlt.checkpoint" not in finished.data.tags
    assert not checkpoint.exists()  # the kept checkpoint goes with the run's end
