"""Is a difference real? A bootstrap over test items and seeds, its power, and an interval for every cell.

- **Items, not rows.** A test item is one example across its languages: XNLI's and PAWS-X's test
  sets are translations of the same items, so the same item's rows in five languages are not five
  independent rows. Each item's counts are summed over the languages compared, and the
  bootstrap resamples items (a cluster bootstrap; Dror et al., 2018, on significance testing in
  NLP). Resampling (language, row) pairs would narrow the interval by up to the square root of the
  number of languages.
- **Seeds.** With several runs (seeds) on each side, every resample also draws each side's seeds
  with replacement (a two-stage, hierarchical bootstrap), so the interval holds both the test
  items' variance and the seeds'. With one seed on a side, seed variance cannot be estimated and
  is not in the interval: a difference that the items call real is reported as a lead on these
  items, not a verdict on the configurations.
- **Power.** The smallest difference a comparison detects with 80% power at the 5% level is
  (z_0.975 + z_0.8) x its bootstrap standard error (Card et al., 2020, "With little power comes
  great responsibility"): a comparison within noise says how large a difference it could have seen.
- **Counts, not averages.** Each item carries the counts its task's metric is a function of the
  sums of (right and rows for accuracy; true positives, false positives and false negatives for
  F1: xlt.tasks), and every resample is scored from its summed counts, so F1 is recomputed on each
  resample, never averaged over sentences.
- A cell (a configuration on a language): over several runs, the t interval of their mean
  value; for one run, Wilson's interval over its test rows for accuracy (scipy.stats.binomtest),
  the bootstrap's percentile interval over its items for other metrics.

The items come from each run's per-example predictions (xlt.tracking.predictions), identified by
their row in the test file; runs without them (older runs) get no test.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from xlt.core.metrics import TARGET_MEAN
from xlt.tracking.predictions import ItemCounts

LEVEL = 0.95
POWER = 0.80
RESAMPLES = 1000
SEED = 0
METHOD = (f"bootstrap over test items (an example across its languages) and, with several seeds a side, over seeds, "
          f"{RESAMPLES:,} resamples, {LEVEL:.0%} interval, seed {SEED}; a verdict needs two or more seeds a side "
          f"(Dror et al. 2018; power: Card et al. 2020)")

Side = Sequence[Sequence[str]]  # a configuration's runs, grouped by seed (translate-train: a run per language)


@dataclass(frozen=True)
class Difference:
    """A minus B in the task's metric: the point estimate, its interval, and what the comparison could detect."""
    diff: float
    low: float
    high: float
    items: int  # independent test items both sides tested
    seeds: Tuple[int, int]  # seeds on each side
    detectable: float  # the smallest difference detected with 80% power at these items and seeds

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    @property
    def significant(self) -> bool:
        """A verdict on the configurations: the interval excludes 0 and holds the seeds' variance."""
        return self.excludes_zero and min(self.seeds) >= 2

    @property
    def items_only(self) -> bool:
        """Real on these test items, but one side has one seed: no verdict on the configurations."""
        return self.excludes_zero and min(self.seeds) < 2

    def interval(self) -> str:
        return f"{100 * self.low:+.1f} to {100 * self.high:+.1f} points"

    def sizes(self) -> str:
        return f"{self.items:,} test items, {self.seeds[0]} and {self.seeds[1]} seeds"


@dataclass
class Examples:
    """Per run, each test item's counts (xlt.tracking.predictions.ItemCounts: right and rows; true
    positives, false positives, false negatives...), and the metric from summed counts (the task
    kind's `score`): every estimate and every resample is scored from sums, so that F1 is
    recomputed from counts, never averaged over examples. Tables indexed by (lang, row) are taken too."""
    stats: Dict[str, ItemCounts]  # run id -> its items' counts, an array per language
    score: Callable[[np.ndarray], np.ndarray]  # sums (..., counts) -> the metric
    # Kept for the comparisons of a report, where a run meets many others: (runs of a seed, languages) -> its items.
    _items: Dict[Tuple[Tuple[str, ...], Tuple[str, ...]], np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.stats = {run: counts if isinstance(counts, ItemCounts) else ItemCounts.of_frame(counts)
                      for run, counts in self.stats.items()}
        # Every language's rows on one axis, so that an item's languages line up: row r at index r.
        self.rows = max((len(dense) for counts in self.stats.values() for dense in counts.by_lang.values()), default=0)

    @classmethod
    def of_correctness(cls, correct: pd.DataFrame) -> Examples:
        """From a sentence task's correctness table: index (lang, row), a column per run, 1.0 where right."""
        stats = {run: pd.DataFrame({"right": correct[run], "rows": correct[run].notna().astype(float)}).dropna()
                 for run in correct.columns}
        return cls(stats, _proportion)

    def __contains__(self, run_id: str) -> bool:
        return run_id in self.stats

    def of_lang(self, run_id: str, lang: str) -> Optional[np.ndarray]:
        """A run's items of one language: rows x counts, row r at index r, NaN where it did not test
        row r; None if it tested none of that language."""
        dense = self.stats[run_id].by_lang.get(lang)
        if dense is None or len(dense) == self.rows:
            return dense
        return np.vstack([dense, np.full((self.rows - len(dense), dense.shape[1]), np.nan)])

    def counts(self, run_id: str, langs: List[str]) -> np.ndarray:
        """A run's tested items of `langs`, by language and row: items x counts."""
        counts = self.stats[run_id]
        parts = [counts.tested(lang) for lang in sorted(counts.by_lang) if lang in langs]
        return np.concatenate(parts) if parts else np.empty((0, len(counts.names)))

    def items_per_language(self, run_id: str) -> pd.Series:
        """lang -> how many test items the run has in it."""
        counts = self.stats[run_id]
        return pd.Series({lang: len(counts.tested(lang)) for lang in counts.by_lang}, dtype=float)


def _proportion(sums: np.ndarray) -> np.ndarray:
    return sums[..., 0] / np.maximum(sums[..., 1], 1e-12)


def _as_counts(values: np.ndarray) -> np.ndarray:
    """Per-item values (items, or items x seeds) as items x seeds x (value, 1): their mean is a proportion."""
    values = np.atleast_2d(np.asarray(values, dtype=float).T).T
    return np.stack([values, np.ones_like(values)], axis=-1)


def _combined(parts: List[np.ndarray], how: str) -> np.ndarray:
    """Arrays of rows x counts (NaN: a row not tested) combined row by row: the mean or the sum
    (`how`) over the arrays that tested the row; NaN where none did."""
    if len(parts) == 1:
        return parts[0]
    stacked = np.stack(parts)
    tested = ~np.isnan(stacked)
    total, count = np.where(tested, stacked, 0.0).sum(axis=0), tested.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        combined = total / count if how == "mean" else total
    combined[count == 0] = np.nan
    return combined


def _seed_items(examples: Examples, runs: Sequence[str], langs: List[str]) -> np.ndarray:
    """rows x counts of one seed (row r at index r, NaN where the seed tested no language's row r):
    each item's counts summed over `langs` (the seed's runs may each cover one language; where two
    cover the same row, their mean). Kept: a run meets many others."""
    key = (tuple(runs), tuple(langs))
    if key not in examples._items:
        per_lang = []
        for lang in langs:
            parts = [part for part in (examples.of_lang(run, lang) for run in runs) if part is not None]
            if parts:
                per_lang.append(_combined(parts, "mean"))
        width = len(examples.stats[runs[0]].names)
        examples._items[key] = _combined(per_lang, "sum") if per_lang else np.full((examples.rows, width), np.nan)
    return examples._items[key]


def item_matrix(examples: Examples, side: Side, langs: List[str]) -> Tuple[np.ndarray, np.ndarray]:
    """(which rows every seed of the side tested, rows x seeds x counts)."""
    seeds = np.stack([_seed_items(examples, runs, langs) for runs in side], axis=1)
    return ~np.isnan(seeds[..., 0]).any(axis=1), seeds


def hierarchical_bootstrap(a: np.ndarray, b: np.ndarray, score=None) -> np.ndarray:
    """The bootstrap distribution of score(a) - score(b), `a` and `b` items x seeds x counts on the
    same items: items resampled in pairs, and each side's seeds resampled where it has several.
    Without `score`: per-item values (items x seeds), their mean compared."""
    if score is None:
        a, b, score = _as_counts(a), _as_counts(b), _proportion
    rng = np.random.default_rng(SEED)
    n = len(a)

    def seed_weights(side: np.ndarray) -> np.ndarray:  # resamples x seeds, each row summing to 1
        k = side.shape[1]
        if k == 1:
            return np.ones((RESAMPLES, 1))
        return rng.multinomial(k, [1 / k] * k, size=RESAMPLES) / k

    weights_a, weights_b = seed_weights(a), seed_weights(b)
    items = rng.multinomial(n, [1 / n] * n, size=RESAMPLES) / n  # resamples x items

    def resampled(side: np.ndarray, seeds: np.ndarray) -> np.ndarray:  # resamples x counts
        return np.einsum("rs,rsk->rk", seeds, np.einsum("ri,isk->rsk", items, side))

    return score(resampled(a, weights_a)) - score(resampled(b, weights_b))


def paired_difference(a: np.ndarray, b: np.ndarray, score=None) -> Difference:
    """A minus B over paired items (`a`, `b`: items x seeds x counts; without `score`, per-item
    values, items or items x seeds, their means compared)."""
    from scipy.stats import norm

    if score is None:
        a, b, score = _as_counts(a), _as_counts(b), _proportion
    draws = hierarchical_bootstrap(a, b, score)
    low, high = np.percentile(draws, [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2])
    detectable = float((norm.ppf((1 + LEVEL) / 2) + norm.ppf(POWER)) * draws.std(ddof=1))
    diff = score(a.sum(axis=0).mean(axis=0)) - score(b.sum(axis=0).mean(axis=0))
    return Difference(float(diff), float(low), float(high), len(a), (a.shape[1], b.shape[1]), detectable)


def _on_shared_items(examples: Examples, side_a: Side, side_b: Side,
                     langs: List[str]) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    (tested_a, a), (tested_b, b) = item_matrix(examples, side_a, langs), item_matrix(examples, side_b, langs)
    common = tested_a & tested_b
    if not common.any():
        return None
    return a[common], b[common]


def compare(examples: Optional[Examples], side_a: Side, side_b: Side, langs: List[str],
            targets: List[str]) -> Optional[Dict[str, Difference]]:
    """A against B per language both tested and over the target languages' items (key `target_mean`);
    None where a run lacks predictions or the sides share no target item."""
    if isinstance(examples, pd.DataFrame):
        examples = Examples.of_correctness(examples)
    runs = [run for side in (side_a, side_b) for seed in side for run in seed]
    if examples is None or not all(run in examples for run in runs):
        return None
    out = {}
    for lang in langs:
        shared = _on_shared_items(examples, side_a, side_b, [lang])
        if shared is not None:
            out[lang] = paired_difference(*shared, examples.score)
    pooled = _on_shared_items(examples, side_a, side_b, targets)
    if pooled is None:
        return None
    out[TARGET_MEAN] = paired_difference(*pooled, examples.score)
    return out


def cell_interval(values: List[float], counts: Optional[np.ndarray] = None,
                  score=None) -> Optional[Tuple[float, float]]:
    """The interval of a cell: t over several runs' values, else over one run's test items
    (`counts`: items x counts): Wilson's where the metric is a proportion of rows (right of rows),
    else the bootstrap percentile interval of `score` over resampled items."""
    from scipy import stats

    values = np.asarray([a for a in values if a == a], dtype=float)
    if len(values) >= 2:
        half = stats.t.ppf((1 + LEVEL) / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
        return float(values.mean() - half), float(values.mean() + half)
    if counts is None or not len(counts):
        return None
    if counts.shape[1] == 2 and np.all(counts[:, 1] == 1):  # right of one row each: a proportion
        ci = stats.binomtest(int(counts[:, 0].sum()), len(counts)).proportion_ci(LEVEL, method="wilson")
        return float(ci.low), float(ci.high)
    rng = np.random.default_rng(SEED)
    items = rng.multinomial(len(counts), [1 / len(counts)] * len(counts), size=RESAMPLES)
    draws = score(items @ counts)
    low, high = np.percentile(draws, [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2])
    return float(low), float(high)
