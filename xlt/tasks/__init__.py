"""The tasks layer: one module per kind of task, each owning everything that differs between kinds.

A task is a config (conf/task/NAME.yaml) that names its kind (`task.kind`, or `task.module` for a
kind of one's own). A kind module follows `xlt.config.plugins.TaskKind`; the layers above ask it
and never test a task's or a kind's name:

    METRICS, STATISTICS, PEFT_TASK_TYPE, POOLED
        the metrics it logs per language (`test/<lang>/<metric>`), the first one selecting weights
        and headlining the report unless `task.metric` names another; the per-example counts they
        are computed from; peft's task type for its head; whether its head reads one pooled vector
        per row (then `model.pooling` applies, and a frozen encoder's features may be cached)
    columns(task), row_problem(row, task)
        what a row holds, and what is wrong with one (a JSONL line: reported by file and line)
    encode(rows, tokenizer, task, max_length)
        a batch of rows as model inputs, with `labels`, `length` (for batching) and `row`
    model_class(tiny), collator(tokenizer), preprocess_logits(logits, labels), metrics(...)
        the head, the padding, what evaluation keeps of the logits, a language's metrics
    example_statistics(predictions, label_ids, task), score(metric, sums)
        per example, the counts every metric is a function of the sums of (right and rows; true
        positives, false positives, false negatives...), and the metric from summed counts: the
        significance test resamples examples and scores each resample this way, so that F1 is
        recomputed from counts, never averaged over examples
    prediction_alarms(task, train_language, tested), prediction_arrays(...)
        signs of a broken run in its test predictions; what the per-example predictions file keeps
"""
from __future__ import annotations

from types import ModuleType

from xlt.config import TaskConfig, plugins


def task_kind(task: TaskConfig) -> ModuleType:
    """The kind module of a task config, checked against the interface."""
    return plugins.load("task", task)


def metric_of(task: TaskConfig) -> str:
    """The metric that selects weights and headlines the report: `task.metric`, else the kind's first."""
    return task.metric or task_kind(task).METRICS[0]
