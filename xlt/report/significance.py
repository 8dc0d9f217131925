"""Is a difference real? Paired tests on the same test rows, and an interval for every cell.

- Two configurations (two techniques on a model, two models, two values of a swept field): each
  test row's correctness, averaged over a configuration's runs (its seeds), is paired by
  (language, row), and the **paired bootstrap** over rows (scipy.stats.bootstrap, `paired=True`,
  1,000 resamples, 95% percentile interval, seed 0) gives the interval of the accuracy
  difference, per language and over the target languages' rows pooled. Where both sides have
  several seeds, Welch's t interval of the difference of their mean scores must also exclude 0:
  a difference is significant only if neither the test rows nor the seeds explain it.
- A cell (a configuration on a language): over several runs, the t interval of their mean
  accuracy; for one run, Wilson's interval over its test rows (scipy.stats.binomtest).

The rows come from each run's per-example predictions (xlt.tracking.predictions); runs without
them (older runs) get no test, and the findings fall back to the seed-noise caution.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np
import pandas as pd

from xlt.core.metrics import TARGET_MEAN

LEVEL = 0.95
RESAMPLES = 1000
SEED = 0
METHOD = (f"paired bootstrap over test rows, {RESAMPLES:,} resamples, {LEVEL:.0%} interval, seed {SEED}; "
          "with several seeds, also Welch's t interval over them")


@dataclass(frozen=True)
class Difference:
    """A minus B in accuracy: the point estimate and its interval, over `rows` paired test rows."""
    diff: float
    low: float
    high: float
    rows: int
    seeds: Optional[Tuple[float, float]] = None  # Welch's t interval over seeds, where both have several

    @property
    def significant(self) -> bool:
        rows_say = self.low > 0 or self.high < 0
        seeds_say = self.seeds is None or self.seeds[0] > 0 or self.seeds[1] < 0
        return rows_say and seeds_say

    def interval(self) -> str:
        """`+0.6 to +2.9 points`: the interval the verdict rests on (the seeds' where wider)."""
        low, high = (self.low, self.high) if self.seeds is None else (min(self.low, self.seeds[0]),
                                                                       max(self.high, self.seeds[1]))
        return f"{100 * low:+.1f} to {100 * high:+.1f} points"


def correctness(predictions: Dict[str, pd.DataFrame]) -> pd.DataFrame:
    """run id -> its predictions (xlt.tracking.predictions.read_predictions) as one table:
    index (lang, row), a column per run, 1.0 where the selected weights were right."""
    columns = {}
    for run_id, frame in predictions.items():
        chosen = frame[frame["weights"] == "selected"]
        columns[run_id] = pd.Series((chosen["pred"] == chosen["gold"]).astype(float).to_numpy(),
                                    index=pd.MultiIndex.from_arrays([chosen["lang"], chosen["row"]]))
    return pd.DataFrame(columns)


def _paired_rows(correct: pd.DataFrame, runs_a: List[str], runs_b: List[str],
                 langs: List[str]) -> Tuple[np.ndarray, np.ndarray]:
    """Each side's mean correctness per test row of `langs`, on the rows both sides tested (a
    translate-train run tests its own language only)."""
    part = correct.loc[correct.index.get_level_values(0).isin(langs)]
    a, b = part[runs_a].mean(axis=1), part[runs_b].mean(axis=1)
    both = a.notna() & b.notna()
    return a[both].to_numpy(), b[both].to_numpy()


def paired_difference(a: np.ndarray, b: np.ndarray) -> Difference:
    """The paired bootstrap of mean(a) - mean(b) over paired rows."""
    import warnings

    from scipy.stats import bootstrap

    with warnings.catch_warnings():  # sides right on the same rows: the interval is then 0 wide
        warnings.simplefilter("ignore")
        result = bootstrap((a, b), lambda x, y, axis=-1: x.mean(axis=axis) - y.mean(axis=axis), paired=True,
                           vectorized=True, n_resamples=RESAMPLES, confidence_level=LEVEL, method="percentile",
                           random_state=SEED, batch=100)
    interval = result.confidence_interval
    return Difference(float(a.mean() - b.mean()), float(interval.low), float(interval.high), len(a))


def seed_interval(a: Iterable[float], b: Iterable[float]) -> Optional[Tuple[float, float]]:
    """Welch's t interval of mean(a) - mean(b) over runs, where both sides have at least two."""
    a, b = np.asarray(list(a), dtype=float), np.asarray(list(b), dtype=float)
    if len(a) < 2 or len(b) < 2:
        return None
    import warnings

    from scipy.stats import ttest_ind

    with warnings.catch_warnings():  # seeds that agree to the last digit: the interval is then ~0 wide
        warnings.simplefilter("ignore", RuntimeWarning)
        interval = ttest_ind(a, b, equal_var=False).confidence_interval(LEVEL)
    low, high = float(interval.low), float(interval.high)
    return (low, high) if np.isfinite(low) and np.isfinite(high) else None


def compare(correct: Optional[pd.DataFrame], runs_a: List[str], runs_b: List[str], langs: List[str],
            targets: List[str], scores: Optional[Tuple[Iterable[float], Iterable[float]]] = None
            ) -> Optional[Dict[str, Difference]]:
    """A against B per language both tested and on the target languages pooled (key `target_mean`);
    None where a run lacks predictions or the sides share no target row. `scores`: each side's
    per-run target-mean scores, for the seed test."""
    if correct is None or not set(runs_a + runs_b) <= set(correct.columns):
        return None
    paired = {lang: _paired_rows(correct, runs_a, runs_b, [lang]) for lang in langs}
    out = {lang: paired_difference(*rows) for lang, rows in paired.items() if len(rows[0])}
    pooled_rows = _paired_rows(correct, runs_a, runs_b, targets)
    if not len(pooled_rows[0]):
        return None
    pooled = paired_difference(*pooled_rows)
    seeds = seed_interval(*scores) if scores is not None else None
    out[TARGET_MEAN] = Difference(pooled.diff, pooled.low, pooled.high, pooled.rows, seeds)
    return out


def cell_interval(accuracies: List[float], correct_rows: Optional[np.ndarray] = None) -> Optional[Tuple[float, float]]:
    """The interval of a cell: t over several runs' accuracies, else Wilson over one run's rows."""
    from scipy import stats

    values = np.asarray([a for a in accuracies if a == a], dtype=float)
    if len(values) >= 2:
        half = stats.t.ppf((1 + LEVEL) / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
        return float(values.mean() - half), float(values.mean() + half)
    if correct_rows is not None and len(correct_rows):
        ci = stats.binomtest(int(correct_rows.sum()), len(correct_rows)).proportion_ci(LEVEL, method="wilson")
        return float(ci.low), float(ci.high)
    return None
