"""The smoke sweep as a user runs it, in a real process from an unrelated directory, read back by every
assertion here: its console and logs, its MLflow runs and Aim sync, its report, reproducing its runs, and
the rerun. 2 techniques x 2 seeds; job #3 fails at run time (tests/hooks). One sweep for all (issue 33):
it is the costly part."""
import re
import shutil
import subprocess
import sys
from statistics import mean, stdev
from types import SimpleNamespace

import pytest
import yaml

from commands import run_xlt, xlt_cli
from stores import aim_jobs, metric_histories, mlflow_runs

LANGS = ["en", "de", "fr", "es", "ar", "zh"]
EVAL_STEPS = [20, 40, 60, 76]  # 600 rows / batch 16 = 38 steps x 2 epochs; eval every 20 and at the end
SWEEP = ["-m", "experiment=smoke", "train.seed=1,2", "output_dir=out"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("elsewhere")
    result = run_xlt(*SWEEP, cwd=cwd, fault="raise:3")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]  # job #3 failed
    out = cwd / "out"
    (sweep_dir,) = (out / "multirun").iterdir()
    client, runs = mlflow_runs(out, "smoke", parents=True)
    return SimpleNamespace(out=out, dir=sweep_dir, stdout=result.stdout, stderr=result.stderr, client=client,
                           runs=runs, jobs=[r for r in runs if r.data.tags.get("xlt.kind") != "sweep"])


def finished(smoke):
    return [r for r in smoke.jobs if r.info.status == "FINISHED"]


def history(client, run, name):
    return [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, name)]


# -- the console, the runs, the Aim sync -------------------------------------------------------------

@pytest.mark.slow
def test_the_console_reads_like_a_log_file(smoke):
    # stderr holds the failed job's traceback and nothing else: no library chatter, warnings or bars.
    said = [line for line in smoke.stderr.splitlines() if line.strip()]
    assert said[0] == "Traceback (most recent call last):" and said[-1] == "RuntimeError: injected failure in job 3"
    assert not [line for line in said if "warn" in line.lower() or "%|" in line], smoke.stderr[-2000:]
    assert "\r" not in smoke.stdout and "\x1b" not in smoke.stdout  # no bar redraws or colours in a file
    lines = smoke.stdout.splitlines()
    assert not [line for line in lines if line.lstrip().startswith("{")]  # no raw Trainer dicts
    for job in ("#0", "#1"):
        rounds = [line for line in lines if f" {job} step " in line and " validation: target mean " in line]
        assert [line.split(" step ")[1].split()[0] for line in rounds] == [str(s) for s in EVAL_STEPS]
        assert any(f" {job} step 5/76 (7%) loss " in line for line in lines)
        assert any(f" {job} test: target mean " in line for line in lines)
    for run in finished(smoke):  # each job's full log, in its directory
        text = open(f"{run.data.tags['xlt.job_dir']}/run.log").read()
        assert "step 75/76" in text and "step 76 validation: target mean" in text


@pytest.mark.slow
def test_a_run_per_job_and_the_failed_one_ended_failed(smoke):
    assert sorted(r.info.run_name for r in smoke.jobs) == sorted(
        f"tiny-{t} seed={s}" for t in ("fine_tune", "feature_extraction") for s in (1, 2))
    assert sorted(r.info.status for r in smoke.jobs) == ["FAILED", "FINISHED", "FINISHED", "FINISHED"]
    (failed,) = [r for r in smoke.jobs if r.info.status == "FAILED"]
    assert failed.data.tags["xlt.job_num"] == "3" and "injected failure in job 3" in failed.data.tags["xlt.error"]
    assert len({r.data.tags["xlt.sweep_id"] for r in smoke.jobs}) == 1
    for run in smoke.jobs:
        p = run.data.params
        assert (p["model"], p["languages"], p["train.batch_size"], p["train.learning_rate"]) == \
            ("tiny", ",".join(LANGS), "16", "0.001")
        assert p["technique"] == run.info.run_name.split("-")[1].split()[0] == p["technique.name"]
    for run in finished(smoke):
        artifacts = {a.path for a in smoke.client.list_artifacts(run.info.run_id, "hydra")}
        assert artifacts == {"hydra/config.yaml", "hydra/hydra.yaml", "hydra/overrides.yaml"}
        resolved = smoke.client.download_artifacts(run.info.run_id, "config/resolved.yaml")
        assert "technique:" in open(resolved).read()
    frozen = next(r for r in finished(smoke) if r.data.params["technique"] == "feature_extraction")
    assert frozen.data.params["model.trainable_params"] == str(64 * 3 + 3)  # the classifier only


@pytest.mark.slow
def test_the_sweep_ends_with_an_aim_sync(smoke):
    from aim import Repo

    repo = Repo(str(smoke.out / "aim"))
    synced = {run["mlflow_run_id"]: run for run in repo.iter_runs()}
    assert sorted(synced) == sorted(r.info.run_id for r in smoke.runs) and len(smoke.runs) == 5  # 4 jobs, 1 sweep
    german = list(repo.query_metrics("metric.name == 'accuracy' and metric.context.lang == 'de'", report_mode=0))
    assert {m.context["subset"] for m in german} == {"validation", "test", "test_last"} and len(german) == 9
    jobs = {h: r for h, r in synced.items() if r["tags"].get("xlt.kind") != "sweep"}
    assert {run["params"]["technique"] for run in jobs.values()} == {"fine_tune", "feature_extraction"}
    assert all(run["params"]["train.save"] in ("none", "selected") for run in jobs.values())  # strings stay strings
    assert all("xlt.heartbeat_s" in run["tags"] for run in synced.values())


@pytest.mark.slow
def test_aim_shows_mlflow_times_and_status(smoke):
    from aim import Repo

    by_id = {r.info.run_id: r for r in smoke.jobs}
    synced = aim_jobs(smoke.out / "aim")
    assert len(synced) == 4 and len(list(Repo(str(smoke.out / "aim")).iter_runs())) == 5  # the jobs and their sweep
    for aim_run in synced:
        info = by_id[aim_run["mlflow_run_id"]].info
        assert aim_run.creation_time == pytest.approx(info.start_time / 1000, abs=1e-3)
        assert aim_run.end_time == pytest.approx(info.end_time / 1000, abs=1e-3)
        assert set(aim_run.props.tags) == ({"FAILED"} if info.status == "FAILED" else set())
        # Runs differing only by seed are told apart by name: `tiny-fine_tune seed=2 ...`.
        assert f"seed={by_id[aim_run['mlflow_run_id']].data.params['train.seed']}" in aim_run.name.split()


@pytest.mark.slow
def test_the_sweeps_parent_run_nests_its_jobs_holds_the_report_and_is_in_aim(smoke):
    """As aim-mlflow keeps it: its metrics, report and results as texts, charts as images, tags."""
    from aim import Repo

    (parent,) = [r for r in smoke.runs if r.data.tags.get("xlt.kind") == "sweep"]
    # Issue 26: a sweep in which a job failed ends its parent run FAILED (not a green tick).
    assert parent.data.tags["xlt.sweep_id"] == smoke.dir.name and parent.info.status == "FAILED"
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in smoke.jobs)
    assert parent.data.metrics["runs/finished"] == 3 and parent.data.metrics["runs/failed"] == 1
    names = {a.path for a in smoke.client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.html", "report/report.md", "report/results.csv"} <= names

    repo = Repo(str(smoke.out / "aim"))
    (in_aim,) = [r.run for r in repo.query_runs("run['tags']['xlt.kind'] == 'sweep'", report_mode=0).iter_runs()]
    jobs = repo.query_runs(f"run['tags']['xlt.sweep_id'] == '{smoke.dir.name}'", report_mode=0).iter_runs()
    assert sorted(r.run.name for r in jobs if r.run.hash != in_aim.hash) == sorted(r.info.run_name for r in smoke.jobs)
    metrics = {m.name: m.values.last()[1] for m in in_aim.metrics()}
    assert metrics["runs/finished"] == 3 and metrics["runs/failed"] == 1 and "target_mean_accuracy_best" in metrics
    texts = {t.name for t in repo.query_texts(f"run.hash == '{in_aim.hash}'", report_mode=0)}
    images = {i.name for i in repo.query_images(f"run.hash == '{in_aim.hash}'", report_mode=0)}
    assert texts == {"report/report.md", "report/results.csv"}
    assert "report/heatmap.png" in images and all(name.startswith("report/") for name in images)


# -- what the jobs logged ----------------------------------------------------------------------------

@pytest.mark.slow
def test_every_language_is_evaluated_at_every_eval_step(smoke):
    for run in finished(smoke):
        for lang in LANGS + ["target_mean"]:
            assert [s for s, _ in history(smoke.client, run, f"validation/{lang}/accuracy")] == EVAL_STEPS
        for lang in LANGS:
            assert [s for s, _ in history(smoke.client, run, f"validation/{lang}/loss")] == EVAL_STEPS
        assert [s for s, _ in history(smoke.client, run, "train/loss")] == list(range(5, 76, 5))
        tests = {lang: run.data.metrics[f"test/{lang}/accuracy"] for lang in LANGS}
        assert run.data.metrics["test/target_mean/accuracy"] == pytest.approx(
            mean(v for lang, v in tests.items() if lang != "en"))
        at_20 = [v for s, v in history(smoke.client, run, "validation/target_mean/accuracy") if s == 20][0]
        firsts = {lang: history(smoke.client, run, f"validation/{lang}/accuracy")[0][1] for lang in LANGS[1:]}
        assert at_20 == pytest.approx(mean(firsts.values()))


@pytest.mark.slow
def test_the_selected_step_has_the_best_english_validation_accuracy(smoke):
    for run in finished(smoke):
        m = run.data.metrics
        english = history(smoke.client, run, "validation/en/accuracy")
        best = max(v for _, v in english)
        assert m["test/selected_step"] == next(s for s, v in english if v == best)  # the earliest best round
        for lang in LANGS + ["target_mean"]:
            assert f"test_last/{lang}/accuracy" in m
            if m["test/selected_step"] == EVAL_STEPS[-1]:  # the last weights: the same numbers
                assert m[f"test/{lang}/accuracy"] == m[f"test_last/{lang}/accuracy"]


@pytest.mark.slow
def test_each_runs_predictions_are_its_test_rows_in_file_order(smoke):
    """Evaluation runs length-sorted batches; the predictions name each row by its line in the test
    file, so runs pair on the same examples, and they give back the run's own accuracies."""
    import json

    import xlt
    from xlt.config import SAMPLE_DIR

    for run in finished(smoke):
        frame = xlt.load_predictions(f"sqlite:///{smoke.out / 'mlflow.db'}", run.info.run_id)
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


# -- the report ----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_results_csv_holds_exactly_the_mlflow_metrics(smoke):
    import pandas as pd

    table = pd.read_csv(smoke.dir / "report" / "results.csv")
    by_id = {r.info.run_id: r for r in smoke.jobs}
    assert set(table["run_id"]) == set(by_id) and len(by_id) == 4
    assert {"model", "technique", "train.seed", "status", "split", "lang", "accuracy", "loss"} <= set(table.columns)
    for _, row in table.iterrows():
        run = by_id[row["run_id"]]
        assert row["status"] == run.info.status and str(row["train.seed"]) == run.data.params["train.seed"]
        expected = run.data.metrics.get(f"{row['split']}/{row['lang']}/accuracy")
        assert (pd.isna(row["accuracy"]) and expected is None) or row["accuracy"] == expected
    done = table[table["status"] == "FINISHED"]
    assert done[done["split"].isin(["test", "test_last", "validation"])]["accuracy"].notna().all()
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
def test_the_table_and_the_findings_are_the_runs_numbers(smoke):
    markdown = (smoke.dir / "report" / "report.md").read_text()
    rows = table_rows(markdown)
    for technique in ("fine_tune", "feature_extraction"):
        mine = [r for r in finished(smoke) if r.data.params["technique"] == technique]
        cells = rows[("tiny", technique)]
        assert cells["runs"] == str(len(mine))
        for lang, column in [*zip(LANGS, LANGS), ("target_mean", "target mean")]:
            values = [r.data.metrics[f"test/{lang}/accuracy"] for r in mine]
            tested = int(mine[0].data.metrics["test/de/rows"]) * (5 if lang == "target_mean" else 1)
            assert cells[column] == expected_cell(values, tested), (technique, lang)

    # The failed job is listed with its error.
    assert "## Failed and skipped jobs" in markdown and "injected failure in job 3" in markdown
    # The findings rank only runs that learned something (their words: tests/report/test_findings.py):
    # the tiny model's runs carry alarms, and the report says why it is silent.
    alarmed = [r for r in finished(smoke) if r.data.tags.get("xlt.alarms")]
    findings = markdown.split("## Findings")[1].split("\n## ")[0]
    if len(alarmed) == len(finished(smoke)):
        assert f"No finding: every finished run ({len(alarmed)}) carries an alarm" in findings
        assert "Languages by" not in findings and " beats " not in findings and "Seed noise" not in findings
    else:
        assert (f"{len(alarmed)} of {len(finished(smoke))} finished runs are left out" in findings) == bool(alarmed)
    assert "## How the findings are tested" in markdown and "Dror et al. 2018" in markdown


@pytest.mark.slow
def test_charts_are_real_pictures_and_the_html_is_self_contained(smoke):
    import matplotlib.image

    report = smoke.dir / "report"
    pictures = sorted(report.glob("*.png"))
    assert {p.name for p in pictures} >= {"validation_by_step.png", "validation_by_time.png", "training_loss.png",
                                          "heatmap.png"}
    for picture in pictures:
        pixels = matplotlib.image.imread(picture)
        assert pixels.shape[0] > 200 and pixels.shape[1] > 300 and pixels.std() > 0.05, picture.name
    page = (report / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(pictures) and "src='http" not in page


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="Chromium is not installed (apt-get install chromium)")
def test_the_html_report_renders_in_a_browser(smoke, tmp_path):
    import matplotlib.image

    shot = tmp_path / "shot.png"
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1600",
                    f"--screenshot={shot}", (smoke.dir / "report" / "report.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    pixels = matplotlib.image.imread(shot)
    assert pixels.std() > 0.05  # not a blank page: text, table and charts drawn
    assert (pixels[..., :3] < 0.5).mean() > 0.005  # some dark ink


@pytest.mark.slow
def test_xlt_report_on_an_experiment_a_single_run_and_an_empty_store(smoke, tmp_path):
    uri = f"sqlite:///{smoke.out / 'mlflow.db'}"
    cli = [sys.executable, "-m", "xlt.cli", "report", "--mlflow-tracking-uri", uri]
    done = subprocess.run([*cli, "--sweep-id", smoke.dir.name, "--out", str(tmp_path / "again")],
                          capture_output=True, text=True)
    assert done.returncode == 0 and (tmp_path / "again" / "report.html").is_file(), done.stderr
    from xlt.report.publish import report

    one = finished(smoke)[0].info.run_id
    assert (report(uri, tmp_path / "one", run_ids=[one]) / "report.md").read_text().count("| tiny ") == 1
    missing = subprocess.run([*cli, "--experiment", "nothing"], capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.startswith("xlt: error: --experiment: no experiment "
                                                                 "'nothing'")
    assert len(missing.stderr.strip().splitlines()) == 1


# -- reproducing a run -----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_run_records_what_reproducing_it_needs(smoke):
    run = finished(smoke)[0]
    env = yaml.safe_load(open(smoke.client.download_artifacts(run.info.run_id, "config/environment.yaml")))
    assert env["seed"] in (1, 2) and len(env["git_commit"]) == 40 and env["git_dirty"] in ("True", "False")
    assert env["packages"]["torch"].startswith("2.") and env["packages"]["mlflow"][0].isdigit()
    assert env["packages"]["huggingface_hub"][0].isdigit() and set(env["loaded"]) == {"model", "data"}
    assert yaml.safe_load(open(f"{run.data.tags['xlt.job_dir']}/environment.yaml")) == env
    assert len(run.data.tags["xlt.config_hash"]) == 16


@pytest.mark.slow
def test_reproduce_by_run_id_gives_the_same_metrics(smoke):
    """The same config gives the same metrics: the rerun equals the original point for point."""
    original = next(r for r in finished(smoke) if r.data.params["technique"] == "fine_tune")
    result = xlt_cli("reproduce", original.info.run_id, "--mlflow-tracking-uri", f"sqlite:///{smoke.out}/mlflow.db",
                     "tracking.experiment=reproduced", cwd=smoke.out.parent)  # overrides may follow options
    assert result.returncode == 0, result.stderr[-3000:]
    _, (copy,) = mlflow_runs(smoke.out, "reproduced")
    assert copy.data.tags["xlt.reproduced_from"] == original.info.run_id
    assert copy.data.tags["xlt.config_hash"] == original.data.tags["xlt.config_hash"]
    assert metric_histories(smoke.client, copy) == metric_histories(smoke.client, original)
    assert (smoke.out / "cache" / "tokenized").is_dir()  # the rerun read the sweep's tokenized splits
    # Issue 26: the original's name, marked; the new run's id; the sweep's log format, no download bars.
    assert copy.info.run_name == f"{original.info.run_name} (reproduced)"
    assert f"xlt reproduce: run {copy.info.run_id} reproduces {original.info.run_id}" in result.stdout
    assert "Downloading" not in result.stdout + result.stderr and "[INFO]" not in result.stdout
    assert re.search(r"^\d\d:\d\d:\d\d pooling: cls ", result.stdout, re.M)


@pytest.mark.heavy  # the default run's longest file: reproducing by run id stays in it
def test_reproduce_a_job_directory_with_an_override_and_hydras_own_way(smoke):
    original = next(r for r in finished(smoke) if r.data.params["technique"] == "feature_extraction")
    job_dir = original.data.tags["xlt.job_dir"]
    result = xlt_cli("reproduce", job_dir, "train.epochs=1", "tracking.experiment=one_epoch", cwd=smoke.out.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    _, (shorter,) = mlflow_runs(smoke.out, "one_epoch")
    assert shorter.data.tags["xlt.reproduced_from"] == job_dir and shorter.data.params["train.epochs"] == "1.0"
    assert shorter.info.run_name == f"{original.info.run_name} (reproduced with epochs=1)"
    assert [s for s, _ in metric_histories(smoke.client, shorter)["train/loss"]][-1] == 35

    hydra_way = run_xlt("--config-path", f"{job_dir}/.hydra", "--config-name", "config",
                        "tracking.experiment=hydra_way", cwd=smoke.out.parent)
    assert hydra_way.returncode == 0, hydra_way.stderr[-3000:]
    _, (same,) = mlflow_runs(smoke.out, "hydra_way")
    assert metric_histories(smoke.client, same) == metric_histories(smoke.client, original)


# -- the rerun: last, since it changes the store -------------------------------------------------------

@pytest.mark.slow
def test_the_rerun_trains_only_the_failed_job_and_changes_nothing_else_in_aim(smoke):
    result = run_xlt(*SWEEP, cwd=smoke.out.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("Skipping #") == 3
    # The finished jobs and the first sweep's parent run are unchanged; the failed job's run is new (a
    # run of the rerun), and so is the rerun's own parent run (its report).
    assert "xlt sync: 2 new, 1 updated, 4 unchanged runs" in result.stdout
    # The overrides every job shares are said once; each row holds the job's own.
    table = result.stdout[result.stdout.index("Every job: experiment=smoke output_dir=out"):]
    assert table.count("experiment=smoke") == 1
    assert re.search(r"^\| #1  \| technique=fine_tune train\.seed=2 +\| SKIPPED ", table, re.M), table
    assert re.search(r"^\| #3  \| technique=feature_extraction train\.seed=2 +\| FINISHED ", table, re.M), table
