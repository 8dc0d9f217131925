"""The report's claims on synthetic grids of known structure (issue 36): item-level intervals,
seeds, power, silence on broken runs, no hashes as swept fields, honest charts. In-process."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from xlt.report.findings import SweepScores, findings
from xlt.report.significance import compare, paired_difference

TARGETS = ["de", "fr", "es", "ar", "zh"]


def translated(rng, skills, n=200, agree=0.9):
    """Per-example correctness on en + 5 targets, each item translated into every language: an item's
    rows agree across languages with probability `agree`. `skills`: run id -> accuracy."""
    index = pd.MultiIndex.from_product([["en", *TARGETS], range(n)], names=["lang", "row"])
    hard = rng.random(n)  # an item's difficulty, the same in every language and for every run
    columns = {}
    for run_id, skill in skills.items():
        own = rng.random(n) < skill + (0.5 - hard) * 0.6  # this run gets the item right, in the source
        flips = rng.random((6, n)) > agree  # a translation sometimes goes the other way
        columns[run_id] = np.where(flips, ~own, own).astype(float).reshape(-1)
    return pd.DataFrame(columns, index=index)


def test_translations_of_one_item_give_the_wider_item_level_interval():
    from scipy.stats import bootstrap

    correct = translated(np.random.default_rng(1), {"a": 0.60, "b": 0.52})
    (d,) = [compare(correct, [["a"]], [["b"]], [], TARGETS)["target_mean"]]
    # By hand: the paired bootstrap over items, each item its mean over the five target languages.
    items = correct.loc[TARGETS].groupby(level="row").mean()
    by_hand = bootstrap((items["a"].to_numpy(), items["b"].to_numpy()), lambda x, y, axis=-1: x.mean(axis) -
                        y.mean(axis), paired=True, n_resamples=4000, method="percentile", random_state=0)
    hand = by_hand.confidence_interval
    assert d.items == 200 and d.diff == pytest.approx(items["a"].mean() - items["b"].mean())
    assert d.high - d.low == pytest.approx(hand.high - hand.low, rel=0.15)
    # Resampling (language, row) pairs as independent rows would claim a far narrower interval.
    rows = correct.loc[TARGETS]
    naive = bootstrap((rows["a"].to_numpy(), rows["b"].to_numpy()), lambda x, y, axis=-1: x.mean(axis) -
                      y.mean(axis), paired=True, n_resamples=2000, method="percentile", random_state=0)
    assert d.high - d.low > 1.7 * (naive.confidence_interval.high - naive.confidence_interval.low)


def seeds_grid(rng, n=600):
    """Two configurations of one skill that differ only by their seeds (three each), each seed shifting a
    run's accuracy as seeds do (BENCHMARKS.md: 0.4-3.7 points apart): their difference is the seeds' alone."""
    offsets = {"x1": -0.03, "x2": 0.0, "x3": 0.03, "y1": 0.06, "y2": -0.02, "y3": 0.01}
    return translated(rng, {run: 0.55 + off for run, off in offsets.items()}, n=n)


def test_two_configurations_that_differ_only_by_seed_are_never_called_different():
    correct = seeds_grid(np.random.default_rng(7))
    x, y = [["x1"], ["x2"], ["x3"]], [["y1"], ["y2"], ["y3"]]
    with_seeds = compare(correct, x, y, [], TARGETS)["target_mean"]
    assert not with_seeds.significant and with_seeds.seeds == (3, 3)
    # One seed a side: the items alone call the lucky pair different, which is never a verdict.
    one = compare(correct, [["x1"]], [["y1"]], [], TARGETS)["target_mean"]
    assert one.excludes_zero and one.items_only and not one.significant
    runs = pd.DataFrame([{"run_id": r, "status": "FINISHED", "model": "m", "technique": r[0], "train.seed": int(r[1]),
                          "duration_s": 1.0} for r in ["x1", "y1"]])
    scores = runs.assign(score=[correct[r].loc[TARGETS].mean() for r in runs["run_id"]])
    s = SweepScores(runs, pd.DataFrame({"lang": ["en", *TARGETS]}), scores, [], None, "en", correct)
    said = s.verdict(scores.iloc[[1]], scores.iloc[[0]], "y", "x")
    assert "beats" not in said and "no verdict on the configurations" in said and "1 and 1 seeds" in said


def test_a_real_difference_on_few_items_is_underpowered_not_merely_within_noise():
    rng = np.random.default_rng(3)
    a, b = (rng.random(50) < 0.60).astype(float), (rng.random(50) < 0.55).astype(float)
    d = paired_difference(a, b)
    assert not d.excludes_zero and d.detectable > 0.15  # 50 items detect only differences of ~25 points
    runs = pd.DataFrame([{"run_id": f"{t}{s}", "status": "FINISHED", "model": "m", "technique": t, "train.seed": s,
                          "duration_s": 1.0} for t in "ab" for s in (1, 2)])
    index = pd.MultiIndex.from_product([["en", "de"], range(50)])
    correct = pd.DataFrame({f"{t}{s}": np.tile(v, 2) for t, v in (("a", a), ("b", b)) for s in (1, 2)}, index=index)
    scores = runs.assign(score=[correct[r].loc["de"].mean() for r in runs["run_id"]])
    said = SweepScores(runs, pd.DataFrame({"lang": ["en", "de"]}), scores, [], None, "en", correct).verdict(
        scores[scores.technique == "a"], scores[scores.technique == "b"], "a", "b")
    assert "within noise" in said and "underpowered below" in said and "50 test items, 2 and 2 seeds" in said


def test_runs_that_learned_nothing_rank_nothing():
    runs = pd.DataFrame([{"run_id": f"r{i}", "status": "FINISHED", "model": "m", "technique": t, "train.seed": 1,
                          "duration_s": 1.0, "alarms": "learns nothing: every language within noise of chance 0.333"}
                         for i, t in enumerate(["fine_tune", "lora"])])
    tidy = pd.DataFrame([{"run_id": f"r{i}", "split": "test", "lang": lang, "accuracy": 0.33 + 0.01 * i,
                          "technique": t} for i, t in enumerate(["fine_tune", "lora"])
                         for lang in ("en", "de", "fr", "target_mean")])
    said = findings(runs, tidy)
    assert said == ["No finding: every finished run (2) carries an alarm (Alarms below: it learned nothing, or its "
                    "numbers are broken), and such runs rank nothing."]
    healthy = findings(runs.assign(alarms=["", "learns nothing"]), tidy)
    assert healthy[0] == ("1 of 2 finished runs are left out of these findings: their alarms say their numbers are "
                          "broken (Alarms below).")
    assert not any("lora" in line for line in healthy)


def test_content_hashes_commits_and_paths_are_never_swept_fields():
    from xlt.report.results import swept_fields

    runs = [SimpleNamespace(data=SimpleNamespace(params={
        "train.seed": "1", "protocol.shots": shots, "data.commit": f"{shots * 7:064x}", "model.commit": f"c{shots}",
        "data.dir": f"/data/{shots}", "model.path": f"/ckpt/{shots}"})) for shots in (16, 64)]
    assert swept_fields(runs) == ["train.seed", "protocol.shots"]


def test_durations_compare_only_between_jobs_that_ran_alone_on_like_hardware():
    base = {"status": "FINISHED", "model": "m", "train.seed": 1, "host": "h", "device": "cpu", "parallel_jobs": "1",
            "cpus": "2"}
    runs = pd.DataFrame([{**base, "run_id": "a", "technique": "fine_tune", "duration_s": 300.0, "load": "2.1"},
                         {**base, "run_id": "b", "technique": "lora", "duration_s": 100.0, "load": "1.9"}])
    tidy = pd.DataFrame([{"run_id": r, "split": "test", "lang": lang, "accuracy": acc, "technique": t}
                         for r, t, acc in (("a", "fine_tune", 0.6), ("b", "lora", 0.5)) for lang in ("en", "de",
                                                                                                 "target_mean")])
    assert any(line.startswith("fine_tune runs took 3.00x as long as lora runs") for line in findings(runs, tidy))
    busy = findings(runs.assign(load=["2.1", "5.0"]), tidy)  # a job alone on 2 cores keeps them busy: ~2
    assert "No timing finding: 1 of the runs shared the machine with other work (load 5.0 on 2 cores)" in \
        "\n".join(busy)
    side_by_side = findings(runs.assign(parallel_jobs="2"), tidy)
    assert "No timing finding: jobs ran side by side" in "\n".join(side_by_side)
    assert "No timing finding: the runs' conditions" in "\n".join(findings(runs.drop(columns="host"), tidy))


def test_charts_draw_error_bars_chance_and_a_legend_entry_per_swept_value():
    from matplotlib.container import ErrorbarContainer

    from xlt.report import charts

    points = pd.DataFrame([{"model": "m", "technique": "fine_tune", "protocol.shots": k, "mean": 0.416 + k / 1e4,
                            "low": 0.38 + k / 1e4, "high": 0.45 + k / 1e4} for k in (0, 16, 64)])
    fig = charts.draw_by_field(points, "protocol.shots", chance=1 / 3)
    ax = fig.axes[0]
    (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars.lines[0].get_xdata()) == 3 and bars.has_yerr
    assert any(list(line.get_ydata()) == [1 / 3, 1 / 3] for line in ax.get_lines())  # chance
    low, high = ax.get_ylim()
    assert low <= 1 / 3 and high - low >= 0.45 - 0.38  # never narrower than an interval: no zoom into noise

    runs = pd.DataFrame([{"run_id": f"r{k}", "model": "m", "technique": "fine_tune", "protocol.shots": k}
                         for k in (0, 16, 64)])
    curves = pd.DataFrame([{"run_id": f"r{k}", "metric": f"validation/{lang}/accuracy", "step": step,
                            "value": 0.4 + step / 1e3, "seconds": step} for k in (0, 16, 64)
                           for lang in ("en", "de", "target_mean") for step in (10, 20)])
    fig = charts.draw_curves(runs, curves, ["en", "de"], "step", ["protocol.shots"], chance=1 / 3)
    (legend,) = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["m fine_tune shots=0", "m fine_tune shots=16", "m fine_tune shots=64", "chance 0.333"]
    colours = {tuple(c.get_color()[0]) for c in fig.axes[0].collections if c.get_label().startswith("m ")}
    assert len(colours) == 3
