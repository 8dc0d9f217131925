"""What a sweep found, as sentences computed from its numbers (never written by hand).

Every finding names the runs behind it, and claims no more than they hold (xlt.report.significance):
"beats" only where the interval over test items and seeds excludes 0 with two or more seeds a side;
a lead over test items with one seed a side is no verdict; "within noise" says the smallest
difference the comparison could have detected. Runs whose alarms say they learned nothing rank
nothing (the findings say so), and durations are compared only between jobs that ran alone on
the same host and device. Runs without per-example predictions fall back to the seed-noise
caution: the standard deviation of the transfer score between runs that differ only by `train.seed`.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Dict, List, Optional

import pandas as pd

from xlt.core.metrics import TARGET_MEAN
from xlt.report.results import CONDITIONS, COVERS, varied_fields
from xlt.report.significance import Difference, Examples, compare

SEED = "train.seed"

PROTOCOL = "protocol.name"


def _value(value) -> str:
    """A field's value as written: 4, not 4.0 (a column with gaps holds integers as floats)."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


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


def sides(runs: pd.DataFrame) -> List[List[str]]:
    """A configuration's runs grouped by seed (translate-train: a run per target language each)."""
    if SEED not in runs:
        return [[run_id] for run_id in runs["run_id"]]
    return [list(group["run_id"]) for _, group in runs.groupby(SEED, dropna=False)]


@dataclass
class SweepScores:
    """The finished runs of a sweep, read once for every finding."""
    done: pd.DataFrame  # one row per finished run
    test: pd.DataFrame  # their test rows of the tidy table, one per language and the target mean
    scores: pd.DataFrame  # `done` with `score`: the mean target-language test value of `metric`
    hyper: List[str]  # the fields the runs vary in, the seed aside
    noise: Optional[float]  # seed noise, where some configuration has several seeds
    train_language: str
    examples: Optional[Examples] = None  # per test item and run: its counts (significance.Examples)
    metric: str = "accuracy"  # the runs' headline metric (xlt.tasks)

    def __post_init__(self):
        if isinstance(self.examples, pd.DataFrame):  # a sentence task's correctness table
            self.examples = Examples.of_correctness(self.examples)

    @property
    def techniques(self) -> List[str]:
        return sorted(self.scores["technique"].unique())

    @property
    def langs(self) -> List[str]:
        return sorted(set(self.test["lang"]) - {TARGET_MEAN})

    def versus(self, a: pd.DataFrame, b: pd.DataFrame) -> Optional[Dict[str, Difference]]:
        """The paired comparison of two sets of runs (rows of `scores`), or None without predictions."""
        targets = [lang for lang in self.langs if lang != self.train_language]
        return compare(self.examples, sides(a), sides(b), self.langs, targets)

    def verdict(self, a: pd.DataFrame, b: pd.DataFrame, name_a: str, name_b: str) -> str:
        """`A beats B by N points ...`, `A leads B ... on these test items ...: no verdict` (one seed
        a side) or `A and B are within noise of each other ...; underpowered below N points`."""
        mean_a, mean_b, diff = a["score"].mean(), b["score"].mean(), a["score"].mean() - b["score"].mean()
        d = self.versus(a, b)
        if d is None:
            return (f"{name_a} beats {name_b} by {_pts(diff)} of mean target-language test {self.metric} "
                    f"({mean_a:.3f} vs {mean_b:.3f}; {len(a)} and {len(b)} runs)"
                    f"{_caution(diff, self.noise, [len(a), len(b)])}")
        pooled = d[TARGET_MEAN]
        per_lang = ", ".join(f"{lang} {100 * d[lang].diff:+.1f}{'*' if d[lang].significant else ''}"
                             for lang in self.langs if lang in d)
        why = f"95% interval {pooled.interval()} over {pooled.sizes()}"
        what = f"of mean target-language test {self.metric}"
        if pooled.significant:
            most = max((lang for lang in d if lang not in (TARGET_MEAN, self.train_language)),
                       key=lambda lang: d[lang].diff, default=None)
            head = f"{name_a} beats {name_b} by {_pts(diff)} {what}" + (f", most in {most}" if most and
                                                                         d[most].diff > 0 else "")
        elif pooled.items_only:
            head = (f"{name_a} leads {name_b} by {_pts(diff)} {what} on these test items, but with one seed a side "
                    f"the seeds' variance is not in the interval: no verdict on the configurations "
                    f"(rerun with {SEED}=1,2,3)")
        else:
            head = f"{name_a} and {name_b} are within noise of each other on mean target-language test {self.metric}"
            why += (f"; underpowered below {_pts(pooled.detectable)}: the smallest difference these items and "
                    "seeds detect with 80% power")
        return f"{head} ({mean_a:.3f} vs {mean_b:.3f}; {why}; per language, points, * significant: {per_lang})"


def healthy(runs: pd.DataFrame) -> pd.DataFrame:
    """The finished runs whose numbers do not look broken (no alarm: xlt.train.alarms)."""
    done = runs[runs["status"] == "FINISHED"]
    return done[done["alarms"].fillna("") == ""] if "alarms" in done else done


def findings(runs: pd.DataFrame, tidy: pd.DataFrame, train_language: str = "en",
             examples: Optional[Examples] = None, metric: str = "accuracy") -> List[str]:
    """Sentences about the finished runs of a sweep (`runs`: one row per run; `tidy`: results;
    `examples`: their per-item counts, for the significance tests; `metric`: what `score` is)."""
    finished, done = runs[runs["status"] == "FINISHED"], healthy(runs)
    if finished.empty:
        return ["No run finished: nothing to compare."]
    broken = len(finished) - len(done)
    if done.empty:
        return [f"No finding: every finished run ({broken}) carries an alarm (Alarms below: it learned nothing, "
                "or its numbers are broken), and such runs rank nothing."]
    if "score" not in tidy:  # a results table of accuracy only (sentence tasks)
        tidy = tidy.assign(score=tidy["accuracy"])
    test = tidy[(tidy["split"] == "test") & tidy["run_id"].isin(done["run_id"])]
    if test["score"].isna().all():
        return ["No run finished: nothing to compare."]
    score = test[test["lang"] == TARGET_MEAN].set_index("run_id")["score"]
    scores = done.assign(score=done["run_id"].map(score)).dropna(subset=["score"])
    hyper = varied_fields(runs)
    config = ["model", "technique", *hyper, *([COVERS] if COVERS in scores else [])]
    s = SweepScores(done, test, scores, hyper, seed_noise(scores, config), train_language, examples, metric)
    out: List[str] = [f"{broken} of {len(finished)} finished runs are left out of these findings: their alarms "
                      "say their numbers are broken (Alarms below)."] if broken else []
    for finding in (_techniques, _protocols, _languages, _best_model, _variation, _time, _hyperparameters):
        out += finding(s)
    if s.noise is not None:
        out.append(f"Seed noise: runs that differ only by train.seed differ by {_pts(s.noise)} "
                   f"(standard deviation of the mean target-language test {s.metric}).")
    return out


def _techniques(s: SweepScores) -> List[str]:
    return _per_model(s, "technique")


def _protocols(s: SweepScores) -> List[str]:
    return _per_model(s, PROTOCOL) if PROTOCOL in s.scores else []


def _per_model(s: SweepScores, field: str) -> List[str]:
    """A field's values against each other, per model (techniques, protocols): the best one
    against each of the others."""
    values = sorted(s.scores[field].unique())
    if len(values) < 2:
        return []
    out, wins = [], {v: 0 for v in values}
    for model, group in s.scores.groupby("model"):
        by = group.groupby(field)["score"]
        if len(by) < 2:
            continue
        means, counts = by.mean(), by.size()
        winner = means.idxmax()
        others = [t for t in means.sort_values(ascending=False).index if t != winner]
        ties = [t for t in others if f"{means[t]:.3f}" == f"{means[winner]:.3f}"]  # equal as stated
        if ties == others:
            names = " and ".join([winner, *others])
            runs = " and ".join(str(counts[t]) for t in [winner, *others])
            out.append(f"On {model}, {names} tie at {means[winner]:.3f} mean target-language "
                       f"test {s.metric} ({runs} runs).")
            continue
        wins[winner] += 1
        for loser in others:
            if loser in ties:
                out.append(f"On {model}, {winner} and {loser} tie at {means[winner]:.3f} mean target-language "
                           f"test {s.metric} ({counts[winner]} and {counts[loser]} runs).")
                continue
            out.append(f"On {model}, " + s.verdict(group[group[field] == winner],
                                                   group[group[field] == loser], winner, loser) + ".")
    models = (s.scores.groupby("model")[field].nunique() > 1).sum()
    if models > 1:
        best = max(wins, key=wins.get)
        out.append(f"{best} wins on {wins[best]} of {models} models.")
    return out


def _languages(s: SweepScores) -> List[str]:
    """Languages, best first; none ranked where their spread is within the noise of one cell."""
    langs = s.test[s.test["lang"] != TARGET_MEAN].groupby("lang")["score"].mean().sort_values(ascending=False)
    if len(langs) < 2:
        return []
    runs = f"over {len(s.scores)} runs"
    ranking = ", ".join(f"{lang} {acc:.3f}" for lang, acc in langs.items())
    noise = _language_noise(s, langs)
    if noise is not None and langs.iloc[0] - langs.iloc[-1] < noise:
        return [f"Languages by mean test {s.metric} {runs}: {ranking}; all within noise of each other (two languages "
                f"differ significantly only by {_pts(noise)} or more at these test sizes): no ranking."]
    top = [lang for lang, acc in langs.items() if f"{acc:.3f}" == f"{langs.iloc[0]:.3f}"]  # equal as stated
    if len(top) == len(langs):
        return [f"Languages by mean test {s.metric} {runs}: all {len(langs)} tie at {langs.iloc[0]:.3f}."]
    if len(top) > 1:
        where = f"{', '.join(top)} tie for first"
    elif top[0] == s.train_language:
        where = f"{s.train_language}, the training language, first"
    else:
        where = f"{top[0]} first, ahead of {s.train_language}, the training language"
    return [f"Languages by mean test {s.metric} {runs}: {ranking} ({where}; last: {langs.index[-1]})."]


def _language_noise(s: SweepScores, langs: pd.Series) -> Optional[float]:
    """The half-width of the 95% interval of a difference between two languages' accuracies, from
    the test rows a language has (binomial, per run, averaged over the runs); None without rows."""
    if s.examples is None:
        return None
    counted = [s.examples.items_per_language(r) for r in s.scores["run_id"] if r in s.examples]
    if not counted:
        return None
    per_lang = pd.concat(counted, axis=1).mean(axis=1)  # items a language
    n = per_lang.reindex(langs.index).dropna()
    if n.empty or (n <= 0).any():
        return None
    p = langs.reindex(n.index).clip(0.01, 0.99)
    sd = ((p * (1 - p) / n) / len(s.scores)).pow(0.5).max()
    return float(1.96 * 2 ** 0.5 * sd)


def _best_model(s: SweepScores) -> List[str]:
    by_model = s.scores.groupby("model")["score"]
    if len(by_model) < 2:
        return []
    means = by_model.mean().sort_values(ascending=False)
    first, second = means.index[0], means.index[1]
    verdict = s.verdict(s.scores[s.scores["model"] == first], s.scores[s.scores["model"] == second], first, second)
    return [f"Best model: {first}, mean target-language test {s.metric} {means.iloc[0]:.3f} over "
            f"{by_model.size()[first]} runs; {verdict}."]


def _variation(s: SweepScores) -> List[str]:
    """Where the variation is: across languages, or across models."""
    per_lang = s.test[s.test["lang"] != TARGET_MEAN]
    if per_lang["lang"].nunique() < 2:
        return []
    out = []
    for technique, group in per_lang.groupby("technique"):
        across_langs = group.groupby("run_id")["score"].std().mean()
        model_means = s.scores[s.scores["technique"] == technique].groupby("model")["score"].mean()
        across_models = f", across models by {_pts(model_means.std())}" if len(model_means) > 1 else ""
        out.append(f"{technique}: test {s.metric} varies across languages by {_pts(across_langs)} "
                   f"(standard deviation within a run){across_models}.")
    return out


def _time(s: SweepScores) -> List[str]:
    """The slowest technique against the fastest, where the jobs ran alone on like hardware."""
    if len(s.techniques) < 2:
        return []
    reason = _shared_machine(s.done)
    if reason:
        return [f"No timing finding: {reason}, so their durations compare the machine's load, not the techniques."]
    seconds = s.done.groupby("technique")["duration_s"]
    mean_s = seconds.mean().sort_values(ascending=False)
    slow, fast = mean_s.index[0], mean_s.index[-1]
    return [f"{slow} runs took {mean_s[slow] / mean_s[fast]:.2f}x as long as {fast} runs "
            f"(mean {mean_s[slow]:.0f} s vs {mean_s[fast]:.0f} s; {seconds.size()[slow]} and "
            f"{seconds.size()[fast]} runs, each alone on {s.done['host'].iloc[0]}, {s.done['device'].iloc[0]})."]


def _shared_machine(done: pd.DataFrame) -> Optional[str]:
    """Why the runs' durations do not compare (None where each ran alone on like hardware)."""
    if any(c not in done or done[c].isna().any() for c in CONDITIONS):
        return "the runs' conditions (host, device, jobs beside them, load) were not all recorded"
    if done["host"].nunique() > 1 or done["device"].nunique() > 1:
        return "the runs ran on different hosts or devices"
    if (done["parallel_jobs"].astype(float) > 1).any():
        return "jobs ran side by side"
    cpus = done["cpus"].astype(float)
    busy = done[done["load"].astype(float) > cpus + 1]  # a job alone keeps its own cores busy, no more
    if not busy.empty:
        return (f"{len(busy)} of the runs shared the machine with other work (load "
                f"{busy['load'].astype(float).max():.1f} on {int(busy['cpus'].iloc[0])} cores)")
    return None


def _hyperparameters(s: SweepScores) -> List[str]:
    """Each swept field: its values' scores, the best against the worst."""
    out = []
    for field in s.hyper:
        if field == PROTOCOL:  # compared per model (_protocols)
            continue
        by = s.scores.groupby(field)["score"]
        if len(by) < 2:
            continue
        means, counts = by.mean(), by.size()
        values = ", ".join(f"{_value(v)} -> {means[v]:.3f} ({counts[v]} runs)" for v in means.index)
        best, worst = means.idxmax(), means.idxmin()
        verdict = s.verdict(s.scores[s.scores[field] == best], s.scores[s.scores[field] == worst],
                            f"{field}={_value(best)}", f"{field}={_value(worst)}")
        out.append(f"{field}: {values}; {verdict}.")
    return out
