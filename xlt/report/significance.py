"""Is a difference real? A bootstrap over test items and seeds, its power, and an interval for every cell.

- **Items, not rows.** A test item is one example across its languages: XNLI's and PAWS-X's test
  sets are translations of the same items, so the same item's rows in five languages are not five
  independent rows. Each item's correctness is averaged over the languages compared, and the
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
- A cell (a configuration on a language): over several runs, the t interval of their mean
  accuracy; for one run, Wilson's interval over its test rows (scipy.stats.binomtest).

The items come from each run's per-example predictions (xlt.tracking.predictions), identified by
their row in the test file; runs without them (older runs) get no test.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from xlt.core.metrics import TARGET_MEAN

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
    """A minus B in accuracy: the point estimate, its interval, and what the comparison could detect."""
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


def correctness(predictions: Dict[str, pd.DataFrame]) -> pd.DataFrame:
    """run id -> its predictions (xlt.tracking.predictions.read_predictions) as one table:
    index (lang, row), a column per run, 1.0 where the selected weights were right."""
    columns = {}
    for run_id, frame in predictions.items():
        chosen = frame[frame["weights"] == "selected"]
        columns[run_id] = pd.Series((chosen["pred"] == chosen["gold"]).astype(float).to_numpy(),
                                    index=pd.MultiIndex.from_arrays([chosen["lang"], chosen["row"]]))
    return pd.DataFrame(columns)


def item_matrix(correct: pd.DataFrame, side: Side, langs: List[str]) -> pd.DataFrame:
    """items x seeds: each item's correctness averaged over `langs` (and over a seed's runs, which
    may each cover one language), indexed by the item's row."""
    part = correct.loc[correct.index.get_level_values(0).isin(langs)]
    seeds = {i: part[list(runs)].mean(axis=1) for i, runs in enumerate(side)}
    return pd.DataFrame(seeds).groupby(level=1).mean()


def hierarchical_bootstrap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The bootstrap distribution of mean(a) - mean(b), `a` and `b` items x seeds on the same items:
    items resampled in pairs, and each side's seeds resampled where it has several."""
    rng = np.random.default_rng(SEED)
    n = len(a)

    def seed_means(side: np.ndarray) -> np.ndarray:  # items x resamples
        k = side.shape[1]
        if k == 1:
            return np.repeat(side, RESAMPLES, axis=1)
        weights = rng.multinomial(k, [1 / k] * k, size=RESAMPLES) / k  # resamples x seeds
        return side @ weights.T

    per_item = seed_means(a) - seed_means(b)
    item_weights = rng.multinomial(n, [1 / n] * n, size=RESAMPLES) / n  # resamples x items
    return np.einsum("ri,ir->r", item_weights, per_item)


def paired_difference(a: np.ndarray, b: np.ndarray) -> Difference:
    """A minus B over paired items (`a`, `b`: items x seeds, or one value per item)."""
    from scipy.stats import norm

    a, b = np.atleast_2d(a.T).T, np.atleast_2d(b.T).T
    draws = hierarchical_bootstrap(a, b)
    low, high = np.percentile(draws, [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2])
    detectable = float((norm.ppf((1 + LEVEL) / 2) + norm.ppf(POWER)) * draws.std(ddof=1))
    return Difference(float(a.mean() - b.mean()), float(low), float(high), len(a), (a.shape[1], b.shape[1]),
                      detectable)


def _on_shared_items(correct: pd.DataFrame, side_a: Side, side_b: Side,
                     langs: List[str]) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    a, b = item_matrix(correct, side_a, langs), item_matrix(correct, side_b, langs)
    common = a.index.intersection(b.index)
    a, b = a.loc[common], b.loc[common]
    keep = (a.notna().all(axis=1) & b.notna().all(axis=1)).to_numpy()
    return (a.to_numpy()[keep], b.to_numpy()[keep]) if keep.any() else None


def compare(correct: Optional[pd.DataFrame], side_a: Side, side_b: Side, langs: List[str],
            targets: List[str]) -> Optional[Dict[str, Difference]]:
    """A against B per language both tested and over the target languages' items (key `target_mean`);
    None where a run lacks predictions or the sides share no target item."""
    runs = [run for side in (side_a, side_b) for seed in side for run in seed]
    if correct is None or not set(runs) <= set(correct.columns):
        return None
    out = {}
    for lang in langs:
        shared = _on_shared_items(correct, side_a, side_b, [lang])
        if shared is not None:
            out[lang] = paired_difference(*shared)
    pooled = _on_shared_items(correct, side_a, side_b, targets)
    if pooled is None:
        return None
    out[TARGET_MEAN] = paired_difference(*pooled)
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
