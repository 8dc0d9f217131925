"""Aim's own callback (tracking.aim.callback=true) beside MLflow, in-process: languages as contexts."""
from jobs import run_job


def test_aims_own_callback_logs_languages_as_context(tmp_path):
    from aim import Repo

    run_job(tmp_path, "model=tiny", "data=sample", "technique=feature_extraction", "train.epochs=1",
            "tracking.aim.callback=true", "tracking.aim.sync=false")
    assert not (tmp_path / "aim").exists()
    repo = Repo(str(tmp_path / "aim_callback"))
    (run,) = list(repo.iter_runs())
    assert run["xlt"]["technique"]["name"] == "feature_extraction"
    contexts = {(m.name, m.context.to_dict().get("subset"), m.context.to_dict().get("lang"))
                for m in repo.query_metrics("", report_mode=0)}
    assert {("accuracy", "validation", "zh"), ("accuracy", "test", "de"), ("runtime", "train", None)} <= contexts
