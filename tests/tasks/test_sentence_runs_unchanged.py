"""A sentence task's runs log what they logged before the tasks layer (issue 34): the same metric
histories (to the float noise of another thread count: torch sums in another order), and the same config
hash (so reruns of old sweeps skip finished jobs). The expected file was written by the commit before the
tasks layer, with these overrides."""
import json
from pathlib import Path

import mlflow
import pytest

from jobs import run_job

BEFORE = json.loads((Path(__file__).with_name("sentence_runs_before_the_tasks_layer.json")).read_text())


def test_a_sentence_tasks_metrics_and_hash_are_what_they_were_before_the_tasks_layer(tmp_path):
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for technique, before in BEFORE["runs"].items():
        result = run_job(tmp_path, *[o.replace("TECH", technique) for o in BEFORE["overrides"]])
        run = client.get_run(result["run_id"])
        metrics = {name: [[m.step, m.value] for m in client.get_metric_history(run.info.run_id, name)]
                   for name in sorted(run.data.metrics) if not name.endswith(("runtime", "per_second", "total_flos"))}
        assert set(metrics) == set(before["metrics"]), technique
        for name, points in before["metrics"].items():
            assert [s for s, _ in metrics[name]] == [s for s, _ in points], (technique, name)
            assert [v for _, v in metrics[name]] == pytest.approx([v for _, v in points], abs=1e-5), (technique, name)
        assert run.data.tags["xlt.config_hash"] == before["config_hash"]
        assert run.data.tags["xlt.metric"] == "accuracy"
