"""What a sweep found, as sentences computed from its numbers (never written by hand).

Every finding names the runs behind it and says when a difference is within seed noise: the
standard deviation of the transfer score between runs that differ only by `train.seed`.
"""
from __future__ import annotations

import statistics
from typing import List, Optional

import pandas as pd

from xlt.metrics import TARGET_MEAN


def _pts(x: float) -> str:
    return f"{100 * x:.1f} points"


def seed_noise(scores: pd.DataFrame, config: List[str]) -> Optional[float]:
    """Pooled standard deviation of the score across seeds of the same configuration, if any has two."""
    spreads = [group["score"].std() for _, group in scores.groupby(config, dropna=False) if len(group) > 1]
    return statistics.fmean(spreads) if spreads else None


def _caution(diff: float, noise: Optional[float], counts: List[int]) -> str:
    if noise is None:
        return " (no repeated seeds: seed noise unknown)" if min(counts) >= 1 else ""
    if abs(diff) <= 2 * noise:
        return f" (within seed noise: seeds differ by {_pts(noise)})"
    return ""


def findings(runs: pd.DataFrame, tidy: pd.DataFrame, train_language: str = "en") -> List[str]:
    """Sentences about the finished runs of a sweep (`runs`: one row per run; `tidy`: results)."""
    done = runs[runs["status"] == "FINISHED"]
    test = tidy[(tidy["split"] == "test") & tidy["run_id"].isin(done["run_id"])]
    if done.empty or test["accuracy"].isna().all():
        return ["No run finished: nothing to compare."]
    score = test[test["lang"] == TARGET_MEAN].set_index("run_id")["accuracy"]
    scores = done.assign(score=done["run_id"].map(score)).dropna(subset=["score"])
    hyper = [c for c in runs.columns if "." in c and c != "train.seed"]  # swept fields but the seed
    noise = seed_noise(scores, ["model", "technique", *hyper])
    out: List[str] = []

    # Technique against technique, per model.
    techniques = sorted(scores["technique"].unique())
    if len(techniques) == 2:
        wins = {t: 0 for t in techniques}
        for model, group in scores.groupby("model"):
            by = group.groupby("technique")["score"]
            if len(by) < 2:
                continue
            means, counts = by.mean(), by.size()
            winner = means.idxmax()
            loser = next(t for t in techniques if t != winner)
            diff = means[winner] - means[loser]
            if diff == 0:
                out.append(f"On {model}, {winner} and {loser} tie at {means[winner]:.3f} mean target-language "
                           f"test accuracy ({counts[winner]} and {counts[loser]} runs).")
                continue
            wins[winner] += 1
            out.append(f"On {model}, {winner} beats {loser} by {_pts(diff)} of mean target-language test "
                       f"accuracy ({means[winner]:.3f} vs {means[loser]:.3f}; {counts[winner]} and "
                       f"{counts[loser]} runs){_caution(diff, noise, list(counts))}.")
        models = scores.groupby("model")["technique"].nunique().eq(2).sum()
        if models > 1:
            best = max(wins, key=wins.get)
            out.append(f"{best} wins on {wins[best]} of {models} models.")

    # Languages, best first.
    langs = test[test["lang"] != TARGET_MEAN].groupby("lang")["accuracy"].mean().sort_values(ascending=False)
    if len(langs) > 1:
        ranking = ", ".join(f"{lang} {acc:.3f}" for lang, acc in langs.items())
        first = train_language if langs.get(train_language) == langs.iloc[0] else langs.index[0]  # ties: en
        where = (f"{train_language}, the training language, first" if first == train_language
                 else f"{first} first, ahead of {train_language}, the training language")
        out.append(f"Languages by mean test accuracy over {len(scores)} runs: {ranking} ({where}; "
                   f"last: {langs.index[-1]}).")

    # The best model.
    by_model = scores.groupby("model")["score"]
    if len(by_model) > 1:
        means = by_model.mean().sort_values(ascending=False)
        diff = means.iloc[0] - means.iloc[1]
        out.append(f"Best model: {means.index[0]}, mean target-language test accuracy {means.iloc[0]:.3f} "
                   f"over {by_model.size()[means.index[0]]} runs, ahead of {means.index[1]} by "
                   f"{_pts(diff)}{_caution(diff, noise, list(by_model.size()))}.")

    # Where the variation is: across languages, or across models.
    per_lang = test[test["lang"] != TARGET_MEAN]
    for technique, group in per_lang.groupby("technique"):
        across_langs = group.groupby("run_id")["accuracy"].std().mean()
        model_means = scores[scores["technique"] == technique].groupby("model")["score"].mean()
        across_models = f", across models by {_pts(model_means.std())}" if len(model_means) > 1 else ""
        if len(langs) > 1:
            out.append(f"{technique}: test accuracy varies across languages by {_pts(across_langs)} "
                       f"(standard deviation within a run){across_models}.")

    # Time.
    if len(techniques) == 2:
        seconds = done.groupby("technique")["duration_s"]
        mean_s = seconds.mean().sort_values(ascending=False)
        slow, fast = mean_s.index
        out.append(f"{slow} runs took {mean_s[slow] / mean_s[fast]:.2f}x as long as {fast} runs "
                   f"(mean {mean_s[slow]:.0f} s vs {mean_s[fast]:.0f} s; {seconds.size()[slow]} and "
                   f"{seconds.size()[fast]} runs).")

    # Each swept hyperparameter.
    for field in hyper:
        by = scores.groupby(field)["score"]
        if len(by) < 2:
            continue
        means, counts = by.mean(), by.size()
        values = ", ".join(f"{value} -> {means[value]:.3f} ({counts[value]} runs)" for value in means.index)
        best, worst = means.idxmax(), means.idxmin()
        diff = means[best] - means[worst]
        out.append(f"{field}: {values}; best {best}, {_pts(diff)} above {worst}"
                   f"{_caution(diff, noise, list(counts))}.")
    if noise is not None:
        out.append(f"Seed noise: runs that differ only by train.seed differ by {_pts(noise)} "
                   "(standard deviation of the mean target-language test accuracy).")
    return out
