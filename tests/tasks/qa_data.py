"""Question-answering data in xlt's local layout, made by rule from the bundled XNLI sample
(benchmarks/span_questions.py: "what comes after «X»?"), and the session's QA runs shared by the
assertions that read them (fixtures, imported by the tests that use them)."""
import sys
from pathlib import Path

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from span_questions import span_task  # noqa: E402

from xlt.config import SAMPLE_DIR  # noqa: E402

LANGS = ["en", "de", "es", "ar", "zh"]
SIZES = {"train": 160, "validation": 16, "test": 30}
# Small windows, so that contexts are split and the stride matters. The tiny model learns little of
# these questions (the real encoder does: benchmarks/bench_span_questions.py); these runs test the pipeline.
QA_TINY = ["model=tiny", "train.max_length=48", "task.doc_stride=16", "train.learning_rate=2e-3", "train.epochs=2",
           "train.batch_size=16", "tracking.aim.sync=false", f"languages.eval=[{','.join(LANGS)}]"]


@pytest.fixture(scope="session")
def qa_dir(tmp_path_factory) -> Path:
    return span_task(SAMPLE_DIR, tmp_path_factory.mktemp("qa"), SIZES, LANGS)


@pytest.fixture(scope="session")
def qa_runs(tmp_path_factory, qa_dir):
    """Fine-tuning and LoRA on task=xquad, zero-shot, in this process: (output dir, {technique: result})."""
    from jobs import run_job

    out = tmp_path_factory.mktemp("qa_runs")
    return out, {technique: run_job(out, "task=xquad", "data=jsonl", f"data.dir={qa_dir}", f"technique={technique}",
                                    *QA_TINY)
                 for technique in ("fine_tune", "lora")}
