"""The report reads a store in bulk (issue 37) and says what the per-run reads said, in-process on a
store of 48 jobs in xlt's shape (benchmarks/big_store.py: model x technique x learning rate x seed,
each run's scores, curves and per-example predictions its own).

The report is computed twice: as it runs (a search per page of runs, a SQL query per few hundred
runs' histories, predictions read from the artifact directory, each run's items an array per
language) and through MLflow's per-run client calls and the significance test's plain pandas
form, which the report used before; the two reports must be the same, word for word."""
import sys

import numpy as np
import pandas as pd
import pytest
from mlflow.entities import Metric

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import big_store  # noqa: E402

LANGS = ["en", "de", "ar"]


def template(tmp_path):
    """A job as xlt logs it, small: params, tags, curves, its config file and predictions."""
    from xlt.tracking.predictions import save_predictions

    rows = {lang: list(range(40)) for lang in LANGS}
    gold = {lang: {"gold": np.arange(40) % 3, "pred": np.arange(40) % 3, "probs": np.full((40, 3), 1 / 3),
                   "stats": np.ones((40, 2))} for lang in LANGS}
    job = tmp_path / "job"
    save_predictions(job, ["entailment", "neutral", "contradiction"], rows, gold, gold, ["right", "rows"])
    (job / "config").mkdir()
    (job / "config" / "resolved.yaml").write_text("model: tiny\n")
    curves = {"train/loss": [1.1 - i / 20 for i in range(10)]}
    for lang in LANGS + ["target_mean"]:
        curves[f"validation/{lang}/accuracy"] = [0.4, 0.5, 0.6]
        curves[f"test/{lang}/accuracy"] = [0.6]
    params = {"model": "tiny", "technique": "fine_tune", "languages": ",".join(LANGS), "task.name": "xnli",
              "task.labels": "entailment,neutral,contradiction", "train.seed": "42", "train.learning_rate": "2e-05",
              "data.train_language": "en"}
    start = 1_700_000_000_000
    histories = {key: [Metric(key, v, start + 1000 * i, 10 * (i + 1)) for i, v in enumerate(values)]
                 for key, values in curves.items()}
    return {"params": params, "tags": {"xlt.metric": "accuracy", "xlt.host": "h"}, "artifacts": job,
            "histories": histories, "start": start, "duration": 60_000}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("big")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return uri, big_store.build(uri, tmp_path / "artifacts", 48, template(tmp_path)), tmp_path


def per_run_curves(tracking_uri, runs, names):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    return pd.DataFrame([{"run_id": r.info.run_id, "metric": name, "step": p.step, "value": p.value,
                          "seconds": (p.timestamp - r.info.start_time) / 1000}
                         for r in runs for name in names if name in r.data.metrics
                         for p in client.get_metric_history(r.info.run_id, name)],
                        columns=["run_id", "metric", "step", "value", "seconds"])


def per_run_statistics(tracking_uri, runs):
    from xlt.tracking.predictions import load_statistics

    found = {r.info.run_id: load_statistics(tracking_uri, r.info.run_id) for r in runs}
    return {run_id: frame for run_id, frame in found.items() if frame is not None}


def plain_seed_items(examples, runs, langs):
    """The significance test's items of one seed as plain pandas computes them: rows x counts, NaN
    where the seed tested no language's row."""
    part = pd.concat([examples.stats[run].frame() for run in runs]).groupby(level=[0, 1]).mean()
    items = part[part.index.get_level_values(0).isin(langs)].groupby(level=1).sum()
    return items.reindex(range(examples.rows)).to_numpy()


def test_the_bulk_readers_return_what_the_per_run_calls_return(store):
    import mlflow

    from xlt.report.results import find_runs, load_curves
    from xlt.tracking.predictions import statistics_of_runs

    uri, run_ids, _ = store
    client = mlflow.MlflowClient(uri)
    asked = run_ids[::-1][:30]  # an order of one's own, more ids than one search takes at a time in some stores
    found = find_runs(uri, run_ids=asked)
    assert [r.info.run_id for r in found] == asked
    for run in found:
        one = client.get_run(run.info.run_id)
        assert (run.data.params, run.data.tags, run.data.metrics) == (one.data.params, one.data.tags, one.data.metrics)
    names = ["train/loss"] + [f"validation/{lang}/accuracy" for lang in LANGS]
    key = ["run_id", "metric", "step"]
    bulk = load_curves(uri, found, names).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(bulk, per_run_curves(uri, found, names).sort_values(key).reset_index(drop=True))
    assert len(bulk) == 30 * (10 + 3 * 3)
    bulk_stats, plain = statistics_of_runs(uri, found), per_run_statistics(uri, found)
    assert bulk_stats.keys() == plain.keys() and len(plain) == 30
    for run_id, frame in plain.items():
        pd.testing.assert_frame_equal(bulk_stats[run_id].frame(), frame)


def test_a_seeds_items_are_the_plain_pandas_ones_for_one_run_several_and_uneven_languages(store):
    from xlt.report.results import find_runs
    from xlt.report.significance import Examples, _seed_items
    from xlt.tracking.predictions import statistics_of_runs

    uri, run_ids, _ = store
    stats = statistics_of_runs(uri, find_runs(uri, run_ids=run_ids[:6]))
    first = run_ids[0]
    stats[first] = stats[first].frame().drop(index=[("de", 3), ("ar", 5), ("ar", 39)])  # a run that lacks some rows
    examples = Examples(stats, lambda sums: sums[..., 0] / sums[..., 1])
    for runs in ([first], run_ids[1:2], run_ids[:3], run_ids[2:6]):
        for langs in (["de"], ["de", "ar"], ["en", "de", "ar"], ["fr"]):
            np.testing.assert_allclose(_seed_items(examples, runs, langs), plain_seed_items(examples, runs, langs),
                                       rtol=1e-12)
    assert np.isnan(_seed_items(examples, [first], ["ar"])[[5, 39]]).all()


def test_the_report_of_a_store_read_in_bulk_is_the_report_read_run_by_run(store, monkeypatch):
    import xlt.report.render as render
    import xlt.report.significance as significance
    from xlt.report.publish import report

    uri, _, tmp_path = store
    bulk = report(uri, tmp_path / "bulk", experiment="big")
    text = (bulk / "report.md").read_text()
    # The grid's techniques differ by 3 points a step (big_store), too little for 40 items to call.
    assert "48 runs (48 finished)" in text and "feature_extraction wins on 4 of 4 models." in text
    monkeypatch.setattr(render, "load_curves", per_run_curves)
    monkeypatch.setattr("xlt.tracking.predictions.statistics_of_runs", per_run_statistics)
    monkeypatch.setattr(significance, "_seed_items", plain_seed_items)
    plain = report(uri, tmp_path / "plain", experiment="big")
    assert (plain / "report.md").read_text() == text
    assert (plain / "results.csv").read_text() == (bulk / "results.csv").read_text()
