"""The report's "What ran" header: the command, what the runs trained and tested on, chance level,
seeds and the runs' ids, read from the runs' params and metrics."""
from __future__ import annotations

from typing import Callable, List, Optional

from xlt.core.metrics import SELECTED_STEP, headline_metric

SHOWN_RUNS = 12


def _natural(value: str):
    """Numbers in numeric order ("3" before "10"), then text."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def _params(runs: List, key: str) -> str:
    return ", ".join(sorted({r.data.params.get(key, "?") for r in runs}, key=_natural))


def _metrics(runs: List, wanted: Callable[[str], bool]) -> str:
    """The distinct values of the metrics `wanted` picks, as `100-200`, or `?`."""
    found = sorted({int(v) for r in runs for k, v in r.data.metrics.items() if wanted(k)})
    return "-".join(map(str, found)) or "?"


def _task(runs: List) -> str:
    params = runs[0].data.params
    labels = [x for x in params.get("task.labels", "").split(",") if x]
    chance = f" (chance {1 / len(labels):.3f})" if headline_metric(runs[0].data.tags) == "accuracy" else ""
    described = f", {len(labels)} labels{chance}" if labels else ""
    return (f"Task {params.get('task.name', '?')}{described}; models {_params(runs, 'model')}; "
            f"techniques {_params(runs, 'technique')}; protocols {_params(runs, 'protocol.name')}; "
            f"seeds {_params(runs, 'train.seed')}.")


def _budget(runs: List, train_language: str) -> str:
    rows = lambda split: _metrics(runs, lambda k: k.startswith(f"{split}/") and k.endswith("/rows"))  # noqa: E731
    trained = sorted({k.split("/")[1] for r in runs for k in r.data.metrics
                      if k.startswith("train/") and k.endswith("/rows") and k.count("/") == 2})
    return (f"Trained on {', '.join(trained) or train_language}: {_metrics(runs, lambda k: k == 'train/rows')} rows, "
            f"{_params(runs, 'train.epochs')} epochs{_budget_factor(runs)}; tested the weights of step "
            f"{_metrics(runs, lambda k: k == SELECTED_STEP)} (train.select={_params(runs, 'train.select')}); "
            f"per language {rows('validation')} validation and {rows('test')} test rows.")


def _budget_factor(runs: List) -> str:
    """` (train.budget=0.1: each technique's own epochs scaled)` where a run scaled them."""
    factors = _params(runs, "train.budget")
    return "" if factors in ("1.0", "?") else f" (train.budget={factors}: each technique's own epochs, scaled)"


def _ids(runs: List, tracking_uri: str) -> str:
    more = len(runs) - SHOWN_RUNS
    listed = ", ".join(r.info.run_id for r in runs[:SHOWN_RUNS])
    return f"Runs: {listed}{f' and {more} more (results.csv lists them)' if more > 0 else ''} in {tracking_uri}."


def what_ran(runs: List, tracking_uri: str, train_language: str, command: Optional[str] = None) -> List[str]:
    """The header's lines (the finished runs describe the budget where there are any)."""
    described = [r for r in runs if r.info.status == "FINISHED"] or runs
    lines = [f"Command: {command}"] if command else []
    return lines + [_task(described), _budget(described, train_language), _ids(runs, tracking_uri)]
