"""A technique is a module plus its config; a task is a config and its own rows."""

import pytest

from commands import run_xlt
from stores import mlflow_runs

# A technique and a protocol of one's own, with typed options, run end to end:
# tests/config/test_plugin_options.py.


def test_an_unknown_technique_is_one_line_naming_those_there_are(tmp_path):
    result = run_xlt("model=tiny", "data=sample", "technique.name=prompt_tuning", f"output_dir={tmp_path}")
    assert result.returncode == 2 and not (tmp_path / "mlflow.db").exists()
    assert result.stderr.strip() == ("xlt: error: technique.name: unknown value 'prompt_tuning'; allowed: "
                                     "bitfit, feature_extraction, fine_tune, lora (or set technique.module)")


TASK = """
name: para
labels: [different, paraphrase]
text_fields: [sentence1, sentence2]
languages: [en, de]
hub_id: example/para
"""


@pytest.mark.heavy  # in CI's second run: the default run stays under 10 minutes
@pytest.mark.slow
def test_a_second_task_is_a_config_and_its_own_rows(tmp_path):
    """A two-label task with other field names, from JSONL files: read, checked, trained, tested."""
    import json

    (tmp_path / "conf" / "task").mkdir(parents=True)
    (tmp_path / "conf" / "task" / "para.yaml").write_text(TASK)
    data = tmp_path / "data"
    data.mkdir()
    for split, lang in [("train", "en"), ("validation", "en"), ("validation", "de"), ("test", "en"), ("test", "de")]:
        rows = [{"sentence1": f"{lang} first {i}", "sentence2": f"{lang} second {i % 7}", "label": i % 2}
                for i in range(40)]
        (data / f"{split}.{lang}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = ["model=tiny", "task=para", "data=jsonl", f"data.dir={data}", "languages.eval=[en,de]",
              f"hydra.searchpath=[file://{tmp_path / 'conf'}]", f"output_dir={tmp_path / 'out'}"]
    result = run_xlt(*common, "train.epochs=1", "train.eval_steps=2")
    assert result.returncode == 0, result.stderr[-3000:]
    _, (run,) = mlflow_runs(tmp_path / "out", "xlt")
    assert run.info.status == "FINISHED" and run.data.params["task.labels"] == "different,paraphrase"
    assert {"test/de/accuracy", "test/target_mean/accuracy"} <= set(run.data.metrics)

    (data / "test.de.jsonl").write_text(json.dumps({"sentence1": "a", "sentence2": "b", "label": 2}) + "\n")
    bad = run_xlt(*common)
    assert bad.returncode == 2
    assert bad.stderr.strip() == (f"xlt: error: data.dir: {data / 'test.de.jsonl'}:1 has label 2; "
                                  "use the integer 0 (different) or 1 (paraphrase)")
