"""Metric names: `<split>/<metric>` or `<split>/<lang>/<metric>`.

- split: `train`, `validation`, `test` (the weights `train.select` chose) or `test_last`
  (the last step's weights);
- lang: a language code of the task, or `target_mean`, the mean over the evaluation languages
  other than the training language (the zero-shot transfer score);
- metric: `loss`, `accuracy`, `f1`, `learning_rate`, ...: a task's kind names the metrics it logs
  (xlt.tasks), and the run's tag `xlt.metric` the one that selects weights and headlines its score.

Examples: `train/loss`, `validation/de/accuracy`, `test/target_mean/accuracy`.
`/` never occurs inside a part, so every name parses back unambiguously.
"""
from __future__ import annotations

from collections import defaultdict
from statistics import mean
from typing import Dict, Iterable, NamedTuple, Optional

from xlt.core.tags import METRIC as METRIC_TAG

TARGET_MEAN = "target_mean"
SPLITS = ("train", "validation", "test", "test_last")
# Trainer's evaluation key prefixes -> our split names.
_PREFIXES = {"eval": "validation", "test": "test", "testlast": "test_last"}
# Trainer's end-of-training summary, renamed. Its `train_loss` is dropped: after a resume it
# averages only the steps since the checkpoint; the `train/loss` curve has the whole story.
_TRAIN_SUMMARY = {"train_runtime": "runtime", "total_flos": "total_flos",
                  "train_samples_per_second": "samples_per_second",
                  "train_steps_per_second": "steps_per_second"}


# Per-language evaluation speed: clutter next to each language's `runtime` (see MlflowMetrics).
_RATES = ("samples_per_second", "steps_per_second")


class MetricKey(NamedTuple):
    split: str
    lang: Optional[str]
    metric: str


def metric_name(split: str, metric: str, lang: Optional[str] = None) -> str:
    return "/".join(p for p in (split, lang, metric) if p)


def target_metric(metric: str) -> str:
    """A job's transfer score in that metric: `test/target_mean/<metric>`."""
    return metric_name("test", metric, TARGET_MEAN)


TARGET_ACCURACY = target_metric("accuracy")  # the transfer score of sentence tasks


def headline_metric(run_tags: Dict[str, str]) -> str:
    """The metric a run is scored by (its tag `xlt.metric`; accuracy for runs made before task kinds)."""
    return run_tags.get(METRIC_TAG) or "accuracy"


def target_score(run) -> Optional[float]:
    """An MLflow run's transfer score: its mean target-language test value of its headline metric."""
    return run.data.metrics.get(target_metric(headline_metric(run.data.tags)))


SELECTED_STEP = metric_name("test", "selected_step")  # the step whose weights `test/...` measured


def parse_metric_name(name: str) -> Optional[MetricKey]:
    """(split, lang, metric) for an xlt metric name, None for any other name."""
    parts = name.split("/")
    if parts[0] not in SPLITS or len(parts) not in (2, 3) or not all(parts):
        return None
    if len(parts) == 2:
        return MetricKey(parts[0], None, parts[1])
    return MetricKey(*parts)


def from_trainer_logs(logs: Dict[str, float]) -> Dict[str, float]:
    """Rename the keys of a Trainer log record; keys with no xlt meaning are dropped."""
    out = {}
    evaluation = any(key.partition("_")[0] in _PREFIXES for key in logs)
    for key, value in logs.items():
        if not isinstance(value, (int, float)):
            continue
        if key in _TRAIN_SUMMARY:
            out[metric_name("train", _TRAIN_SUMMARY[key])] = value
            continue
        prefix, _, rest = key.partition("_")
        if prefix in _PREFIXES and "_" in rest:
            lang, _, metric = rest.partition("_")  # eval_de_accuracy; language codes hold no "_"
            if metric not in _RATES:
                out[metric_name(_PREFIXES[prefix], metric, lang)] = value
        elif key in ("loss", "grad_norm", "learning_rate") or (key == "epoch" and not evaluation):
            out[metric_name("train", key)] = value
    return out


def target_mean(accuracy_by_lang: Dict[str, float], train_language: str) -> Optional[float]:
    targets = [v for lang, v in accuracy_by_lang.items() if lang != train_language]
    return mean(targets) if targets else None


class Rounds:
    """Per-language values of one metric in evaluation rounds. Trainer reports one language at a
    time; `add` returns {split: {lang: value}} for each round the given metrics complete."""

    def __init__(self, languages: Iterable[str], metric: str, validated: Optional[Iterable[str]] = None):
        self.languages, self.metric = set(languages), metric
        # The languages with a validation split, where not all of them (XQuAD: SQuAD's English dev only).
        self.validated = self.languages if validated is None else set(validated)
        self._open: Dict[str, Dict[str, float]] = defaultdict(dict)

    def add(self, metrics: Dict[str, float]) -> Dict[str, Dict[str, float]]:
        done = {}
        for name, value in metrics.items():
            key = parse_metric_name(name)
            expected = self.validated if key and key.split == "validation" else self.languages
            if key and key.metric == self.metric and key.lang in expected:
                round_ = self._open[key.split]
                round_[key.lang] = value
                if set(round_) >= expected:
                    done[key.split] = self._open.pop(key.split)
        return done
