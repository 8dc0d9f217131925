"""hparams_search=optuna: the search space, its checks, and a real study run, failed and resumed."""
import pytest
from omegaconf import OmegaConf

from xlt.sweep.search import as_overrides

from commands import run_xlt
from stores import mlflow_runs

optuna = pytest.importorskip("optuna", reason="pip install -e '.[optuna]'")

# FE trains fastest; two trials at a time (the preset's n_jobs).
SEARCH = ["-m", "experiment=smoke", "hparams_search=optuna", "hydra.sweeper.params.technique=feature_extraction",
          "train.epochs=1", "hydra.sweeper.n_trials=2"]


def load_study(output_dir):
    (summary,) = optuna.get_all_study_summaries(f"sqlite:///{output_dir / 'optuna.db'}")
    return optuna.load_study(study_name=summary.study_name, storage=f"sqlite:///{output_dir / 'optuna.db'}")


def parse(*overrides):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_overrides(list(overrides))


def test_the_override_syntax_becomes_optunas_distributions():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from xlt.sweep.search import corner_jobs, search_space

    fixed, space = search_space(parse("model=tiny", "train.learning_rate=tag(log, interval(1e-5, 1e-3))",
                                      "train.weight_decay=interval(0, 0.1)", "train.epochs=int(interval(1, 3))",
                                      "train.batch_size=choice(16, 32)", "technique=fine_tune,feature_extraction"))
    assert fixed == ["model=tiny"]
    assert space["train.learning_rate"] == FloatDistribution(1e-5, 1e-3, log=True)
    assert space["train.weight_decay"] == FloatDistribution(0.0, 0.1)
    assert space["train.epochs"] == IntDistribution(1, 3)
    assert space["train.batch_size"] == CategoricalDistribution([16, 32])
    assert space["technique"] == CategoricalDistribution(["fine_tune", "feature_extraction"])
    jobs = corner_jobs(fixed, space)
    # one job with every value at its first end, then each of the five other ends on its own
    assert len(jobs) == 6 and all(job[0] == "model=tiny" for job in jobs)
    assert "train.learning_rate=0.001" in jobs[1] and "train.weight_decay=0.0" in jobs[1]
    # A trial's draw runs, and reads, at 4 significant digits.
    assert as_overrides({"train.learning_rate": 0.00016051911333587616, "train.weight_decay": 5.8463261216434157e-05,
                         "train.batch_size": 16, "technique": "fine_tune"}) == [
        "train.learning_rate=0.0001605", "train.weight_decay=5.846e-05", "train.batch_size=16", "technique=fine_tune"]


@pytest.mark.parametrize("override, expected", [
    ("hydra.sweeper.n_trials=0", "hydra.sweeper.n_trials: must be at least 1, got 0"),
    ("hydra.sweeper.sampler=grid", "hydra.sweeper.sampler: unknown sampler 'grid'; choose one of: tpe, random"),
    ("hydra.sweeper.metric=test/en/accuracy", "hydra.sweeper.metric: 'test/en/accuracy' is not a validation metric"),
    ("train.learning_rate=tag(log, interval(0, 1))", "train.learning_rate: `low > 0` must hold for `log=True`"),
    ("train.weight_decay=interval(-1, 0)", "train.weight_decay: must be >= 0, got -1.0"),
    ("hydra.sweeper.params.train.weight_decay=interval(0, 1)",
     "hydra.sweeper.params.train.weight_decay: Hydra's own settings cannot be swept"),
])
def test_a_bad_search_is_one_line_before_any_job(override, expected):
    from xlt.cli.precheck import check

    assert check(["experiment=smoke", "hparams_search=optuna", override], multirun=True).startswith(expected)


@pytest.mark.heavy  # in CI's second run: the default run stays under 10 minutes
@pytest.mark.slow
def test_a_study_records_a_failed_trial_and_the_same_command_resumes_it(tmp_path):
    search = [*SEARCH, f"output_dir={tmp_path}"]
    first = run_xlt(*search, fault="die:1")  # the trial's process is killed, as out of memory
    assert first.returncode == 1, first.stderr[-3000:]
    study = load_study(tmp_path)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL"]  # the failure did not end the study
    failed_params = study.trials[1].params

    client, runs = mlflow_runs(tmp_path, "smoke")
    assert sorted(r.info.status for r in runs) == ["FAILED", "FINISHED"]
    assert len({r.data.tags["xlt.sweep_id"] for r in runs}) == 1  # every trial a run of one sweep
    assert "Launching 2 jobs, 2 at a time" in first.stdout + first.stderr  # the two trials ran side by side

    # The trial's value is its run's target-mean validation accuracy at the step it tested.
    finished = next(r for r in runs if r.info.status == "FINISHED")
    history = client.get_metric_history(finished.info.run_id, "validation/target_mean/accuracy")
    selected = finished.data.metrics["test/selected_step"]
    assert study.trials[0].value == next(m.value for m in history if m.step == selected)
    assert study.trials[0].user_attrs["run_id"] == finished.info.run_id
    assert f"train.learning_rate={finished.data.params['train.learning_rate']}" in as_overrides(study.trials[0].params)

    (best_file,) = tmp_path.glob("multirun/*/best_trial.yaml")
    best = OmegaConf.load(best_file).best
    assert (best.trial, best.value, best.run_id) == (0, study.trials[0].value, finished.info.run_id)
    assert "Best of 1 finished trials (1 failed)" in first.stdout

    # The same command continues the study: the failed trial's values are tried again, and the
    # study reaches n_trials finished trials.
    again = run_xlt(*search)
    assert again.returncode == 0, again.stderr[-3000:]
    study = load_study(tmp_path)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert study.trials[2].params == failed_params
    _, runs = mlflow_runs(tmp_path, "smoke")
    assert sorted(r.info.status for r in runs) == ["FAILED", "FINISHED", "FINISHED"]
    assert "1 of 2 trials finished, 1 to run" in again.stdout + again.stderr
