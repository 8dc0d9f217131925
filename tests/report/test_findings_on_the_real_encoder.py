"""Issues 24 and 36 on the real encoder (multilingual-e5-small), in-process: two seeds of each of two
techniques on a small budget, each technique learning, reported together. The finding says which
per-language differences are significant, over the test items (an item's five translations count
once) and the seeds, and the runs raise no alarm. Genuine transfer above chance: tests/e2e/test_first_run.py."""
import re

import pytest

from conftest import E5, XNLI, needs_shared
from jobs import run_job
from stores import mlflow_runs

TARGETS = ["de", "fr", "es", "ar", "zh"]
COMMON = ["model=local", f"model.path={E5}", "model.pooling=mean", "data=jsonl", f"data.dir={XNLI}",
          "train.max_train_samples=1500", "data.max_eval_samples=100", "data.max_test_samples=300",
          "tracking.experiment=significance", "tracking.aim.sync=false"]
TECHNIQUES = [["technique=fine_tune", "train.epochs=1", "train.batch_size=16", "train.learning_rate=1e-4",
               "train.warmup=0.1", "train.eval_steps=10000"],  # fine-tuning learns in 94 steps
              ["technique=feature_extraction"]]  # its own: 1e-3, 10 epochs on cached features (made once)


@pytest.mark.heavy
@pytest.mark.slow
@needs_shared
def test_the_report_of_fine_tuning_against_feature_extraction_states_what_is_significant(tmp_path):
    from xlt.report.publish import report

    for technique in TECHNIQUES:
        for seed in (1, 2):  # a verdict needs two seeds a side
            run_job(tmp_path, *COMMON, *technique, f"train.seed={seed}")
    _, runs = mlflow_runs(tmp_path, "significance")
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    text = (report(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "report", experiment="significance")
            / "report.md").read_text()
    finding = re.search(r"On multilingual-e5-small-xnli, (\w+) (beats|and) (\w+) .*?; 95% interval ([-+][\d.]+) to "
                        r"([-+][\d.]+) points over 300 test items, 2 and 2 seeds; (?:underpowered[^;]*; )?per "
                        r"language, points, \* significant: (.*?)\)\.", text)
    assert finding, text
    per_lang = dict(part.split() for part in finding[6].split(", "))
    assert set(per_lang) == {"en", *TARGETS}
    significant = (finding[2] == "beats")
    assert significant == (float(finding[4]) > 0 or float(finding[5]) < 0)
    assert any(v.endswith("*") for v in per_lang.values()) or not significant
    assert not [r.data.tags["xlt.alarms"] for r in runs if "xlt.alarms" in r.data.tags]
