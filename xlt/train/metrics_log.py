"""Trainer records into the job's MLflow run, under xlt's metric names (xlt.core.metrics)."""
from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Optional, Sequence

from transformers import TrainerCallback

from xlt.core.metrics import TARGET_MEAN, Rounds, from_trainer_logs, metric_name, parse_metric_name, target_mean


class MlflowMetrics(TrainerCallback):
    """Log every Trainer record under xlt's metric names, plus each round's target mean of every
    metric the task's kind logs (`metrics`: its METRICS)."""

    def __init__(self, languages: List[str], train_language: str, stop, metrics: Sequence[str],
                 validated: Optional[List[str]] = None):
        self.stop = stop  # a GracefulStop: an interrupted call's end-of-training summary is not logged
        self.rounds = [Rounds(languages, metric, validated) for metric in metrics]
        self.train_language = train_language
        self.seconds: Dict[str, float] = defaultdict(float)  # split -> this round's evaluation time
        self.last: Dict[str, float] = {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if self.stop is not None and self.stop.requested and "train_runtime" in logs:
            return  # the resumed run logs the summary when training really ends
        import mlflow

        # Trainer times preparing the model where it first does so outside training: in a run
        # resumed at testing only, a wall-clock figure that would set it apart from an uninterrupted run.
        metrics = {k: v for k, v in from_trainer_logs(logs).items() if not k.endswith("/model_preparation_time")}
        for name in [n for n in metrics if n.endswith("/runtime") and parse_metric_name(n).lang]:
            self.seconds[parse_metric_name(name).split] += metrics.pop(name)  # one figure per round
        for rounds in self.rounds:
            for split, values in rounds.add(metrics).items():
                mean = target_mean(values, self.train_language)
                if mean is not None:
                    metrics[metric_name(split, rounds.metric, TARGET_MEAN)] = mean
                if split in self.seconds:
                    metrics[metric_name(split, "runtime")] = self.seconds.pop(split)
        if metrics:
            mlflow.log_metrics(metrics, step=state.global_step)
            self.last.update(metrics)
