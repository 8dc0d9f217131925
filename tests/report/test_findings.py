"""Findings are computed from the numbers: a known grid, its sentences checked one by one."""
import itertools

import pandas as pd

from xlt.report.findings import findings

LANGS = {"en": 0.10, "de": 0.0, "ar": -0.05}  # each language's offset from a run's level


def grid():
    """2 models x 2 techniques x 2 seeds x 2 batch sizes; fine_tune +0.20, xlmr +0.05,
    batch 16 +0.02, seed 2 +0.01; fine_tune runs take 1.5x as long."""
    runs, tidy = [], []
    for i, (model, technique, seed, batch) in enumerate(itertools.product(
            ["mbert", "xlmr"], ["feature_extraction", "fine_tune"], [1, 2], [8, 16])):
        level = 0.40 + 0.20 * (technique == "fine_tune") + 0.05 * (model == "xlmr") + 0.02 * (batch == 16) \
            + 0.01 * (seed == 2)
        run_id = f"r{i}"
        runs.append({"run_id": run_id, "status": "FINISHED", "model": model, "technique": technique,
                     "train.seed": seed, "train.batch_size": batch,
                     "duration_s": 150.0 if technique == "fine_tune" else 100.0,
                     "host": "h", "device": "cpu", "parallel_jobs": "1", "load": "0.8", "cpus": "2"})  # alone
        accuracy = {lang: level + offset for lang, offset in LANGS.items()}
        accuracy["target_mean"] = (accuracy["de"] + accuracy["ar"]) / 2
        tidy += [{"run_id": run_id, "split": "test", "lang": lang, "accuracy": value, "technique": technique}
                 for lang, value in accuracy.items()]
    runs.append({"run_id": "bad", "status": "FAILED", "model": "xlmr", "technique": "fine_tune", "train.seed": 3,
                 "train.batch_size": 8, "duration_s": 5.0})
    return pd.DataFrame(runs), pd.DataFrame(tidy)


def test_each_finding_states_the_grids_numbers():
    said = findings(*grid())
    text = "\n".join(said)
    # fine_tune is 0.20 ahead on both models, far beyond the seeds' spread (0.01 apart -> std 0.0071).
    assert "On mbert, fine_tune beats feature_extraction by 20.0 points" in text
    assert "On xlmr, fine_tune beats feature_extraction by 20.0 points" in text
    assert "(0.640 vs 0.440; 4 and 4 runs)" in text
    assert "fine_tune wins on 2 of 2 models." in said
    # Languages: en (+0.10) first, ar (-0.05) last, over the 16 finished runs (the failed one left out).
    assert "Languages by mean test accuracy over 16 runs: en " in text and "(en, the training language, first; " \
        "last: ar)" in text
    assert ("Best model: xlmr, mean target-language test accuracy 0.540 over 8 runs; xlmr beats mbert by 5.0 "
            "points") in text
    assert "fine_tune runs took 1.50x as long as feature_extraction runs (mean 150 s vs 100 s; 8 and 8 runs, each " \
        "alone on h, cpu)" in text
    # Batch size: +2.0 points for 16, within 2 x seed noise? No: 0.02 > 2 x 0.0071.
    (batch,) = [s for s in said if s.startswith("train.batch_size:")]
    assert "train.batch_size=16 beats train.batch_size=8 by 2.0 points" in batch and "within seed noise" not in batch
    assert any(s.startswith("Seed noise: runs that differ only by train.seed differ by 0.7 points") for s in said)


def test_a_difference_within_seed_noise_is_flagged():
    runs, tidy = grid()
    # Make seed 2 a whole 0.10 better: the 0.02 batch effect is now within the seeds' spread.
    bump = runs.set_index("run_id")["train.seed"].eq(2)
    tidy.loc[tidy["run_id"].map(bump), "accuracy"] += 0.09
    (batch,) = [s for s in findings(runs, tidy) if s.startswith("train.batch_size:")]
    assert "within seed noise" in batch


def test_a_techniques_own_defaults_are_not_a_sweep():
    """Learning rates that come with each technique differ between runs, but no run of one
    technique differs from another in them; a LoRA rank swept within lora does."""
    from xlt.report.results import varied_fields

    runs = pd.DataFrame([
        {"model": "m", "technique": "fine_tune", "train.learning_rate": 5e-5, "technique.lora.rank": None,
         "train.seed": 1},
        {"model": "m", "technique": "fine_tune", "train.learning_rate": 5e-5, "technique.lora.rank": None,
         "train.seed": 2},
        {"model": "m", "technique": "lora", "train.learning_rate": 5e-4, "technique.lora.rank": 4, "train.seed": 1},
        {"model": "m", "technique": "lora", "train.learning_rate": 5e-4, "technique.lora.rank": 8, "train.seed": 1},
    ])
    assert varied_fields(runs) == ["technique.lora.rank"]
    assert varied_fields(runs.iloc[:3]) == []
    said = "\n".join(findings(runs.assign(run_id=[f"r{i}" for i in range(4)], status="FINISHED", duration_s=1.0),
                              pd.DataFrame([{"run_id": f"r{i}", "split": "test", "lang": lang, "accuracy": 0.5 + i / 10,
                                             "technique": t} for i, t in enumerate(["fine_tune"] * 2 + ["lora"] * 2)
                                            for lang in ("en", "de", "target_mean")])))
    assert "train.learning_rate" not in said and "technique.lora.rank: 4 -> 0.700 (1 runs), 8 -> 0.800" in said


# -- significance: paired tests on the same test items (issues 24, 36) --------------------------------

def _rows_grid(rng, n=400):
    """Per-example correctness of 3 configurations x 3 seeds on en/de/ar (n rows each): `strong`
    is right on 12% more rows than `base` by construction; `twin` is `base` with other seeds."""
    langs = ["en", "de", "ar"]
    index = pd.MultiIndex.from_product([langs, range(n)], names=["lang", "row"])
    hard = rng.random(len(index))  # a row's difficulty, shared by every run: what pairing exploits
    columns, runs, tidy = {}, [], []
    for name, skill in (("base", 0.50), ("twin", 0.50), ("strong", 0.62)):
        for seed in (1, 2, 3):
            run_id = f"{name}{seed}"
            noise = rng.random(len(index)) * 0.10
            columns[run_id] = ((hard + noise) < skill + 0.05).astype(float)
            runs.append({"run_id": run_id, "status": "FINISHED", "model": "m", "technique": name,
                         "train.seed": seed, "duration_s": 1.0})
            per_lang = pd.Series(columns[run_id], index=index).groupby(level=0).mean()
            accuracy = {**per_lang.to_dict(), "target_mean": per_lang[["de", "ar"]].mean()}
            tidy += [{"run_id": run_id, "split": "test", "lang": lang, "accuracy": value, "technique": name}
                     for lang, value in accuracy.items()]
    return pd.DataFrame(runs), pd.DataFrame(tidy), pd.DataFrame(columns, index=index)


def test_a_difference_by_construction_is_significant_and_one_of_seeds_only_is_not():
    import numpy as np

    runs, tidy, correct = _rows_grid(np.random.default_rng(0))
    said = findings(runs, tidy, "en", correct)
    (strong,) = [s for s in said if "strong beats base" in s or "strong and base" in s]
    assert strong.startswith("On m, strong beats base by ")
    (twin,) = [s for s in said if "strong beats twin" in s or "strong and twin" in s]
    assert "strong beats twin" in twin
    # base against twin (seeds only): the same comparison, made directly, is within noise.
    from xlt.report.findings import SweepScores
    from xlt.report.significance import hierarchical_bootstrap

    scores = runs.assign(score=runs["run_id"].map(tidy[tidy["lang"] == "target_mean"].set_index("run_id")["accuracy"]))
    s = SweepScores(runs, tidy, scores, [], None, "en", correct)
    base, twin = scores[scores["technique"] == "base"], scores[scores["technique"] == "twin"]
    assert "are within noise of each other" in s.verdict(twin, base, "twin", "base")
    # The numbers are the hierarchical bootstrap's over the target items (an item's de and ar rows, one
    # item) and the three seeds a side.
    strong_runs = scores[scores["technique"] == "strong"]
    a = correct.loc[["de", "ar"], list(strong_runs["run_id"])].groupby(level="row").mean().to_numpy()
    b = correct.loc[["de", "ar"], list(base["run_id"])].groupby(level="row").mean().to_numpy()
    low, high = np.percentile(hierarchical_bootstrap(a, b), [2.5, 97.5])
    assert f"95% interval {100 * low:+.1f} to {100 * high:+.1f} points over 400 test items, 3 and 3 seeds" in strong
    assert f"by {100 * (a.mean() - b.mean()):.1f} points" in strong
    assert "per language, points, * significant: ar +" in strong and "*, de +" in strong
