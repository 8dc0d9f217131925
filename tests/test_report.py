"""`xlt report` on a real sweep: tiny model, 2 techniques x 2 seeds, one job failing."""
import shutil
import subprocess
import sys
from statistics import mean, stdev

import pytest

from conftest import aim_jobs, mlflow_runs, run_xlt

LANGS = ["en", "de", "fr", "es", "ar", "zh"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    result = run_xlt("-m", "experiment=smoke", "train.seed=1,2", "train.max_train_samples=160", "train.epochs=1",
                     "train.eval_steps=4", "tracking.experiment=rep", f"output_dir={out}", fault="raise:3")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]  # job #3 failed
    (sweep_dir,) = (out / "multirun").iterdir()
    client, runs = mlflow_runs(out, "rep", parents=True)
    return out, sweep_dir, client, runs


def jobs(runs):
    return [r for r in runs if r.data.tags.get("xlt.kind") != "sweep"]


@pytest.mark.slow
def test_results_csv_holds_exactly_the_mlflow_metrics(sweep):
    import pandas as pd

    _, sweep_dir, _, runs = sweep
    table = pd.read_csv(sweep_dir / "report" / "results.csv")
    by_id = {r.info.run_id: r for r in jobs(runs)}
    assert set(table["run_id"]) == set(by_id) and len(by_id) == 4
    assert {"model", "technique", "train.seed", "status", "split", "lang", "accuracy", "loss"} <= set(table.columns)
    for _, row in table.iterrows():
        run = by_id[row["run_id"]]
        assert row["status"] == run.info.status and str(row["train.seed"]) == run.data.params["train.seed"]
        expected = run.data.metrics.get(f"{row['split']}/{row['lang']}/accuracy")
        assert (pd.isna(row["accuracy"]) and expected is None) or row["accuracy"] == expected
    finished = table[table["status"] == "FINISHED"]
    assert finished[finished["split"].isin(["test", "test_last", "validation"])]["accuracy"].notna().all()
    assert table[table["status"] == "FAILED"]["accuracy"].isna().all()


def expected_cell(values, rows):
    """`mean ±half`: half the 95% interval, t over several runs, Wilson over one run's test rows."""
    from scipy.stats import binomtest, t

    if len(values) > 1:
        half = t.ppf(0.975, len(values) - 1) * stdev(values) / len(values) ** 0.5
    else:
        ci = binomtest(round(values[0] * rows), rows).proportion_ci(0.95, method="wilson")
        half = (ci.high - ci.low) / 2
    return f"{mean(values):.3f} ±{half:.3f}"


def table_rows(markdown):
    """{(model, technique): {column: cell}} from the report's accuracy table."""
    lines = [line for line in markdown.splitlines() if line.startswith("| tiny ")]
    head = next(line for line in markdown.splitlines() if line.startswith("| model "))
    columns = [c.strip() for c in head.strip("|").split("|")]
    rows = {}
    for line in lines:
        cells = dict(zip(columns, [c.strip().strip("*") for c in line.strip("|").split("|")]))
        rows[(cells["model"], cells["technique"])] = cells
    return rows


@pytest.mark.slow
def test_the_table_and_the_findings_are_the_runs_numbers(sweep):
    _, sweep_dir, _, runs = sweep
    markdown = (sweep_dir / "report" / "report.md").read_text()
    finished = [r for r in jobs(runs) if r.info.status == "FINISHED"]
    rows = table_rows(markdown)
    score = {}
    for technique in ("fine_tune", "feature_extraction"):
        mine = [r for r in finished if r.data.params["technique"] == technique]
        cells = rows[("tiny", technique)]
        assert cells["runs"] == str(len(mine))
        for lang, column in [*zip(LANGS, LANGS), ("target_mean", "target mean")]:
            values = [r.data.metrics[f"test/{lang}/accuracy"] for r in mine]
            tested = int(mine[0].data.metrics["test/de/rows"]) * (5 if lang == "target_mean" else 1)
            assert cells[column] == expected_cell(values, tested), (technique, lang)
        score[technique] = mean(r.data.metrics["test/target_mean/accuracy"] for r in mine)

    # The failed job is listed with its error.
    assert "## Failed and skipped jobs" in markdown and "injected failure in job 3" in markdown
    # The findings rank only runs that learned something (their words: tests/test_findings.py and
    # tests/report/): the tiny model's runs carry alarms, and the report says why it is silent.
    alarmed = [r for r in finished if r.data.tags.get("xlt.alarms")]
    findings = markdown.split("## Findings")[1].split("\n## ")[0]
    if len(alarmed) == len(finished):
        assert f"No finding: every finished run ({len(finished)}) carries an alarm" in findings
        assert "Languages by" not in findings and " beats " not in findings and "Seed noise" not in findings
    else:
        assert (f"{len(alarmed)} of {len(finished)} finished runs are left out" in findings) == bool(alarmed)
    assert "## How the findings are tested" in markdown and "Dror et al. 2018" in markdown


@pytest.mark.slow
def test_charts_are_real_pictures_and_the_html_is_self_contained(sweep):
    import matplotlib.image

    _, sweep_dir, _, _ = sweep
    report = sweep_dir / "report"
    pictures = sorted(report.glob("*.png"))
    assert {p.name for p in pictures} >= {"validation_by_step.png", "validation_by_time.png", "training_loss.png",
                                          "heatmap.png"}
    for picture in pictures:
        pixels = matplotlib.image.imread(picture)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 300 and pixels.std() > 0.05, picture.name
    page = (report / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(pictures) and "src='http" not in page


@pytest.mark.slow
def test_aim_shows_mlflow_times_and_status(sweep):
    from aim import Repo

    out, _, client, runs = sweep
    by_id = {r.info.run_id: r for r in jobs(runs)}
    synced = aim_jobs(out / "aim")
    assert len(synced) == 4 and len(list(Repo(str(out / "aim")).iter_runs())) == 5  # the jobs and their sweep
    for aim_run in synced:
        info = by_id[aim_run["mlflow_run_id"]].info
        assert aim_run.creation_time == pytest.approx(info.start_time / 1000, abs=1e-3)
        assert aim_run.end_time == pytest.approx(info.end_time / 1000, abs=1e-3)
        tags = set(aim_run.props.tags)
        assert tags == ({"FAILED"} if info.status == "FAILED" else set())
        # Runs differing only by seed are told apart by name: `tiny-fine_tune seed=2 ...`.
        assert f"seed={by_id[aim_run['mlflow_run_id']].data.params['train.seed']}" in aim_run.name.split()


@pytest.mark.slow
def test_a_parent_run_nests_the_sweep_and_holds_the_report(sweep):
    _, sweep_dir, client, runs = sweep
    (parent,) = [r for r in runs if r.data.tags.get("xlt.kind") == "sweep"]
    # Issue 26: a sweep in which a job failed ends its parent run FAILED (not a green tick).
    assert parent.data.tags["xlt.sweep_id"] == sweep_dir.name and parent.info.status == "FAILED"
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in jobs(runs))
    assert parent.data.metrics["runs/finished"] == 3 and parent.data.metrics["runs/failed"] == 1
    names = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.html", "report/report.md", "report/results.csv"} <= names


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="Chromium is not installed (apt-get install chromium)")
def test_the_html_report_renders_in_a_browser(sweep, tmp_path):
    import matplotlib.image

    _, sweep_dir, _, _ = sweep
    shot = tmp_path / "shot.png"
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1600",
                    f"--screenshot={shot}", (sweep_dir / "report" / "report.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    pixels = matplotlib.image.imread(shot)
    assert pixels.std() > 0.05  # not a blank page: text, table and charts drawn
    assert (pixels[..., :3] < 0.5).mean() > 0.005  # some dark ink


@pytest.mark.slow
def test_xlt_report_on_an_experiment_a_single_run_and_an_empty_store(sweep, tmp_path):
    out, sweep_dir, _, runs = sweep
    uri = f"sqlite:///{out / 'mlflow.db'}"
    cli = [sys.executable, "-m", "xlt.cli", "report", "--mlflow-tracking-uri", uri]
    done = subprocess.run([*cli, "--sweep-id", sweep_dir.name, "--out", str(tmp_path / "again")],
                          capture_output=True, text=True)
    assert done.returncode == 0 and (tmp_path / "again" / "report.html").is_file(), done.stderr
    from xlt.report.publish import report

    one = next(r.info.run_id for r in jobs(runs) if r.info.status == "FINISHED")
    assert (report(uri, tmp_path / "one", run_ids=[one]) / "report.md").read_text().count("| tiny ") == 1
    missing = subprocess.run([*cli, "--experiment", "nothing"], capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.startswith("xlt: error: --experiment: no experiment "
                                                                 "'nothing'")
    assert len(missing.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_each_runs_predictions_are_its_test_rows_in_file_order(sweep):
    """Evaluation runs length-sorted batches; the predictions name each row by its line in the test
    file, so runs pair on the same examples, and they give back the run's own accuracies."""
    import json

    import xlt
    from xlt.config import SAMPLE_DIR

    out, _, _, runs = sweep
    for run in [r for r in jobs(runs) if r.info.status == "FINISHED"]:
        frame = xlt.load_predictions(f"sqlite:///{out / 'mlflow.db'}", run.info.run_id)
        for lang in LANGS:
            gold = [json.loads(line)["label"] for line in (SAMPLE_DIR / f"test.{lang}.jsonl").read_text().splitlines()]
            for weights, prefix in (("selected", "test"), ("last", "test_last")):
                mine = frame[(frame["lang"] == lang) & (frame["weights"] == weights)]
                assert sorted(mine["row"]) == list(range(len(gold)))
                assert all(gold[r] == g for r, g in zip(mine["row"], mine["gold"]))
                accuracy = (mine["pred"] == mine["gold"]).mean()
                assert accuracy == pytest.approx(run.data.metrics[f"{prefix}/{lang}/accuracy"])
            probs = mine[[f"p_{label}" for label in ("entailment", "neutral", "contradiction")]].to_numpy()
            assert abs(probs.sum(axis=1) - 1).max() < 1e-2  # float16 probabilities
