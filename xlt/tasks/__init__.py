"""The tasks layer: one module per kind of task, each owning everything that differs between kinds
(sentence_classification, token_classification, question_answering).

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
        a batch of rows (each with its `row` and `lang`) as model inputs, with their targets (`labels`,
        or a span head's `start_positions` and `end_positions`), `length` (for batching) and `row`
    Options, check(cfg)
        optional: a dataclass extending TaskConfig with the kind's own options (question answering's
        windows), registered as xlt_options/task/<kind> for conf/task/*.yaml to extend; its checks
    model_class(tiny), collator(tokenizer), preprocess_logits(logits, labels)
        the head, the padding, what evaluation keeps of the logits
    metrics(predictions, label_ids, task, features)
        a language's metrics; `features`: the evaluated split as `encode` made it (question answering
        maps each window's logits back to its context's characters with it; the others ignore it)
    example_statistics(predictions, label_ids, task, features), score(metric, sums)
        per example, the counts every metric is a function of the sums of (right and rows; true
        positives, false positives, false negatives...), and the metric from summed counts: the
        significance test resamples examples and scores each resample this way, so that F1 is
        recomputed from counts, never averaged over examples
    prediction_alarms(task, train_language, tested, features), prediction_arrays(..., features)
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
