"""Every job of a command line is composed and validated before anything runs."""
import importlib.util

import pytest

from xlt.cli.precheck import check

from commands import run_xlt

BAD_INPUT = [
    (["model=foo"], "model: unknown option 'foo'; choose one of: distilmbert, local, mbert"),
    (["technique=frozen"], "technique: unknown option 'frozen'"),
    (["languages=xnli99"], "languages: unknown option 'xnli99'; choose one of: mlqa7, panx40, pawsx7, tydiqa9, "
                             "udpos, xnli15, xnli6, xquad11"),
    (["experiment=nope"], "experiment: unknown option 'nope'; choose one of: blog, mlqa, mlqa_gxlt, panx, pawsx, "
                          "smoke, techniques, tydiqa, udpos, xquad, xtreme_xnli"),
    (["languages.eval=[en,xx]"], "languages.eval: unknown value 'xx'; allowed: ar, bg"),
    (["languages.eval=[]"], "languages.eval: is empty"),
    (["languages.eval=[en,en]"], "languages.eval: lists a language twice"),
    (["train.batch_size=abc"], "train.batch_size: Value 'abc' of type 'str' could not be converted to Integer"),
    (["train.batch_size=0"], "train.batch_size: must be a positive number, got 0"),
    (["task.hub_splits.validation=SQuAD/validation[:100]"],
     "task.hub_splits.validation: Hydra cannot read 'task.hub_splits.validation=SQuAD/validation[:100]': mismatched "
     "input '[' expecting <EOF>; quote the value: task.hub_splits.validation='SQuAD/validation[:100]'"),
    (["train.learning_rate=-1e-5"], "train.learning_rate: must be a positive number"),
    (["train.epochs=0"], "train.epochs: must be a positive number"),
    (["train.max_length=1024"], "train.max_length: 1024 exceeds 512"),
    (["train.warmup=1.5"], "train.warmup: is a fraction of the training steps in [0, 1)"),
    (["train.precision=fp8"], "train.precision: unknown value 'fp8'"),
    (["model.pooling=max"], "model.pooling: unknown value 'max'; allowed: auto, cls, mean"),
    (["trian.seed=1"], "trian: Key 'trian' not in 'XltConfig'"),
    (["model=local"], "model.path: is empty; give a hub id or a local directory"),
    (["model=local", "model.path=/no/such/dir"], "model.path: local model directory '/no/such/dir' does not exist"),
    (["data=jsonl"], "data.dir: is empty; use data=jsonl data.dir=DIR"),
    (["data=jsonl", "data.dir=/no/such/dir"], "data.dir: JSONL directory '/no/such/dir' does not exist"),
    (["model=mbert"], "model.path: 'google-bert/bert-base-multilingual-cased' (main) is not in the Hugging Face cache"),
    (["model.tiny.num_heads=3"], "model.tiny.hidden_size: must be divisible by model.tiny.num_heads"),
    (["data.max_eval_samples=0"], "data.max_eval_samples: must be a positive number, got 0"),
    (["data.train_language=xx"], "data.train_language: unknown value 'xx'"),
    (["tracking.experiment="], "tracking.experiment: is empty; name the MLflow experiment"),
    (["sweep.skip_finished=maybe"], "sweep.skip_finished: Value 'maybe' is not a valid bool"),
    (["tracking.aim.sync=perhaps"], "tracking.aim.sync: Value 'perhaps' is not a valid bool"),
    (["tracking.tags.team=nlp"], "tracking.tags.team: Key 'team' is not in struct; to add a new key, write +"),
    (["train.select=best"], "train.select: unknown value 'best'; allowed: dev, en_dev, last, target_dev"),
    (["languages.eval=[de,fr]"], "train.select: dev selects on en validation accuracy (protocol zero_shot), but "
                                 "languages.eval lacks en; add it"),
    (["train.dropout=1.5"], "train.dropout: is a probability in [0, 1), got 1.5"),
    (["+train.lr=1e-3"], "train.lr: is not a field of xlt's config; did you mean train.learning_rate?"),
    (["train.lr=1e-3"], "train.lr: Key 'lr' not in 'TrainConfig'; did you mean train.learning_rate?"),
    (["techniqe=fine_tune"], "techniqe: Key 'techniqe' not in 'XltConfig'; did you mean technique?"),
    (["languages.eval=en,de"], "Ambiguous value for argument 'languages.eval=en,de'; 1. To use it as a list, "
                               "use key=[value1,value2]; 2. To use it as string"),
    (["tracking.uri=foo://bar"], "tracking.uri: unknown scheme 'foo' in 'foo://bar'; MLflow opens sqlite, file"),
    (["tracking.uri=some/dir"], "tracking.uri: 'some/dir' has no scheme; write sqlite:///some/dir/mlflow.db"),
    (["tracking.uri=http://127.0.0.1:9"], "tracking.uri: no MLflow server answers at http://127.0.0.1:9 "
                                         "(cannot connect); start one"),
    (["output_dir=/etc/hostname"], "output_dir: '/etc/hostname' is a file; give a directory"),
    (["tracking.aim.repo=/etc/hostname"], "tracking.aim.repo: '/etc/hostname' is a file; give a directory"),
    (["hparams_search=optuan"], "hparams_search: unknown option 'optuan'; choose one of: optuna"),
    # Launchers: xlt's preset and those Hydra's plugins register; their fields keep their names.
    (["hydra/launcher=slurmm"], "hydra/launcher: unknown option 'slurmm'; choose one of: basic, joblib, "),
    (["hydra/launcher=slurm", "hydra.launcher.timeout_min=abc"],
     "hydra.launcher.timeout_min: Value 'abc' of type 'str' could not be converted to Integer"),
    (["hydra/launcher=slurm", "hydra.launcher.partiton=gpu"],
     "hydra.launcher.partiton: Key 'partiton' not in 'SlurmQueueConf'; did you mean hydra.launcher.partition?"),
    # Issue 26: launcher and sweeper keys get suggestions too; the small-run knobs are checked.
    (["hydra.launcher.n_job=2"], "hydra.launcher.n_job: Key 'n_job' not in 'LauncherConf'; "
                                 "did you mean hydra.launcher.n_jobs?"),
    (["hydra.sweeper.max_batch=2"], "hydra.sweeper.max_batch: Key 'max_batch' not in 'SweeperConf'; "
                                    "did you mean hydra.sweeper.max_batch_size?"),
    (["data.max_samples=0"], "data.max_samples: must be a positive number, got 0"),
    (["train.eval_steps=0"], "train.eval_steps: must be a positive number, got 0"),
    (["train.logging_steps=-5"], "train.logging_steps: must be a positive number, got -5"),
    # Issue 22: LoRA's options and train.save; issue 25: the seed's range.
    (["technique=lora", "technique.lora.rank=0"], "technique.lora.rank: must be a positive number, got 0"),
    (["technique=lora", "technique.lora.alpha=-1"], "technique.lora.alpha: must be a positive number, got -1"),
    (["technique=lora", "technique.lora.dropout=1"], "technique.lora.dropout: is a probability in [0, 1), got 1"),
    (["technique=lora", "technique.lora.target_modules=[]"],
     "technique.lora.target_modules: is auto or a list of module names, got []; e.g. technique.lora.target_modules"),
    (["tracking.heartbeat_s=0.05"], "tracking.heartbeat_s: 0.05 s is below 0.5 s: a store does not keep beats that "
                                    "fast, and a live run would look dead; use 0.5 or more (default 10)"),
    # Issue 39: a misspelt or foreign adapter target, before any job (not when each job builds its model).
    (["technique=lora", "technique.lora.target_modules=[query,valeu]"],
     "technique.lora.target_modules: valeu (did you mean value?): no linear layer of model tiny; its linear layers: "
     "dense, key, query, value"),
    (["technique=lora", "technique.lora.rnk=4"], "technique.lora.rnk: Key 'rnk' not in 'LoraOptions'; did you mean "
                                                 "technique.lora.rank?"),
    # Issue 32: an option of a plugin that is not chosen, for every plugin group (issue 39: protocol.shots).
    (["technique.lora.rank=4"], "technique.lora: Key 'lora' not in 'TechniqueConfig'; it is an option of "
                                "technique=lora: choose it, or leave technique.lora out"),
    (["protocol.shots=16"], "protocol.shots: Key 'shots' not in 'ProtocolConfig'; it is an option of "
                            "protocol=few_shot: choose it, or leave protocol.shots out"),
    (["technique=fine_tune", "technique.cache_features=false"], "technique.cache_features: Key 'cache_features' not "
     "in 'TechniqueConfig'; it is an option of technique=feature_extraction: choose it"),
    (["technique=lora", "technique.rank=4"], "technique.rank: Key 'rank' not in 'Options'; did you mean "
                                             "technique.lora.rank?"),
    (["protocol=few_shot", "protocol.shot=3"], "protocol.shot: Key 'shot' not in 'Options'; did you mean "
                                               "protocol.shots?"),
    (["protocol=few_shot", "protocol.shots=many"], "protocol.shots: Value 'many' of type 'str' could not be "
                                                   "converted to Integer"),
    (["train.budget=0"], "train.budget: must be a positive number, got 0"),
    (["model=mbert", "model.tiny.num_heads=4"], "model.tiny.num_heads: model.tiny is empty with this model; it is set "
                                                "by model=tiny"),
    (["train.save=all"], "train.save: unknown value 'all'; allowed: none, selected"),
    (["train.seed=-1"], "train.seed: is a whole number in [0, 4294967295], got -1"),
]


@pytest.mark.parametrize("overrides, expected", BAD_INPUT, ids=[" ".join(o) for o, _ in BAD_INPUT])
def test_bad_input_is_one_line_naming_the_field(overrides, expected):
    problem = check(["model=tiny", "data=sample", *overrides])
    assert problem is not None and problem.startswith(expected), problem
    assert "\n" not in problem


def test_lora_targets_a_local_checkpoint_lacks_are_found_before_any_job(tmp_path):
    from standins.checkpoints import tiny_checkpoint

    checkpoint = tiny_checkpoint(tmp_path / "ckpt", seed=0)
    assert check(["model=local", f"model.path={checkpoint}", "model.name=mine", "data=sample", "technique=lora",
                  "technique.lora.target_modules=[qkv,value]", f"output_dir={tmp_path / 'o'}"]) == (
        "technique.lora.target_modules: qkv: no linear layer of model mine; its linear layers: dense, key, query, "
        "value")
    assert not (tmp_path / "o").exists()


def test_a_list_written_without_brackets_under_multirun_gets_the_fix():
    assert check(["model=tiny", "data=sample", "languages.eval=en,de"], multirun=True) == (
        "languages.eval: Invalid value assigned: str is not a ListConfig, list or tuple; write a list in "
        "brackets, languages.eval=[en,de] (under -m, a,b sweeps over values)")


@pytest.mark.parametrize("label", ["1.0", "true", '"neutral"', "-1", "null"])
def test_a_bad_jsonl_label_is_caught_before_any_job(tmp_path, label):
    import shutil

    from xlt.config import SAMPLE_DIR

    for name in ("train.en", "validation.en", "test.en"):
        shutil.copy(SAMPLE_DIR / f"{name}.jsonl", tmp_path)
    line = len((tmp_path / "test.en.jsonl").read_text().splitlines()) + 1
    with open(tmp_path / "test.en.jsonl", "a") as f:  # pandas writes 1.0 and true
        f.write(f'{{"premise": "p", "hypothesis": "h", "label": {label}}}\n')
    problem = check(["model=tiny", "data=jsonl", f"data.dir={tmp_path}", "languages.eval=[en]"])
    assert problem == f"data.dir: {tmp_path}/test.en.jsonl:{line} has label {label}; use the integer 0 " \
                      "(entailment), 1 (neutral) or 2 (contradiction)"


def test_a_server_that_never_answers_is_a_one_line_error_within_the_timeout():
    import socket
    import time

    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        start = time.monotonic()
        problem = check(["model=tiny", "data=sample", f"tracking.uri=http://127.0.0.1:{silent.getsockname()[1]}"])
    assert problem.startswith("tracking.uri: the MLflow server at http://127.0.0.1:")
    assert "did not answer within 5 s" in problem
    assert time.monotonic() - start < 15


def test_launcher_options_include_xlts_presets_and_the_plugins():
    problem = check(["hydra/launcher=slurmm"], multirun=True)
    options = set(problem.split("choose one of: ")[1].split(", "))
    assert {"basic", "joblib", "xlt", "slurm", "ray_local", "submitit_local", "submitit_slurm"} <= options


def test_a_launcher_needs_what_it_runs_on(tmp_path, monkeypatch):
    assert check(["experiment=smoke", "hydra/sweeper=optuna"], multirun=True) == (
        "hydra/sweeper=optuna: xlt drives Optuna itself: write hparams_search=optuna "
        "(docs/how-to/hyperparameter-search.md)")
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch
    assert check(["experiment=smoke", "hydra/launcher=slurm"], multirun=True) == (
        "hydra/launcher: SLURM's sbatch is not on this machine's PATH: submit from a login node of the cluster, "
        "or try the grid here with hydra/launcher=submitit_local")
    (tmp_path / "sbatch").write_text("#!/bin/sh\n")
    (tmp_path / "sbatch").chmod(0o755)
    assert check(["experiment=smoke", "hydra/launcher=slurm"], multirun=True) is None


RAY = importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is not None


@pytest.mark.skipif(RAY, reason="the ray extra is installed")
def test_the_ray_launcher_without_its_extra_names_the_extra():
    assert check(["experiment=smoke", "hydra/launcher=ray_local"], multirun=True) == (
        "hydra/launcher=ray: Hydra's Ray launcher is not installed: pip install -e \".[ray]\" "
        "(docs/how-to/cluster.md)")


@pytest.mark.ray
@pytest.mark.skipif(not RAY, reason="pip install -e '.[ray]'")
def test_a_ray_cluster_address_is_checked_before_any_job():
    import socket

    from standins.servers import free_port

    port = free_port()  # nothing listens there
    assert check(["experiment=smoke", "hydra/launcher=ray", f"hydra.launcher.ray.init.address=127.0.0.1:{port}"],
                 multirun=True) == (f"hydra.launcher.ray.init.address: cannot connect to 127.0.0.1:{port} "
                                    "(Connection refused): start the cluster (ray start --head) or fix the address; "
                                    "null starts a Ray of this machine")
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        address = f"ray://127.0.0.1:{listening.getsockname()[1]}"
        assert check(["experiment=smoke", "hydra/launcher=ray", f"hydra.launcher.ray.init.address={address}"],
                     multirun=True) is None
    assert check(["experiment=smoke", "hydra/launcher=ray_local"], multirun=True) is None


@pytest.mark.ray
@pytest.mark.skipif(not RAY, reason="pip install -e '.[ray]'")
@pytest.mark.parametrize("visible, per_job", [("0,1", 1), ("", 0)])
def test_ray_local_gives_each_job_a_gpu_where_there_are_gpus(monkeypatch, visible, per_job):
    from hydra import compose, initialize_config_dir

    from xlt.cli.precheck import CONF_DIR
    from xlt.config import register_schema

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    register_schema()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        raw = compose("config", overrides=["hydra/launcher=ray_local"], return_hydra_config=True)
    assert raw.hydra.launcher.ray.remote.num_gpus == per_job


def test_every_job_of_a_sweep_is_checked_before_any_runs():
    # The bad value is in the second job of the grid, after a valid one.
    assert check(["model=tiny", "data=sample", "train.batch_size=8,-1"], multirun=True) \
        == "train.batch_size: must be a positive number, got -1"
    assert check(["model=tiny", "data=sample", "languages.eval=[de,xx]"]).startswith("languages.eval")
    assert check(["experiment=smoke", "hydra.launcher.n_jobs=0"], multirun=True) \
        == "hydra.launcher.n_jobs: must be at least 1, got 0"
    assert check(["experiment=smoke", "hydra/launcher=joblib"], multirun=True) is None  # n_jobs=-1: every core


def test_valid_configs_pass(tmp_path):
    assert check(["experiment=smoke"], multirun=True) is None
    from xlt.config import SAMPLE_DIR

    assert check(["model=tiny", "data=jsonl", f"data.dir={SAMPLE_DIR}", "languages=xnli6"]) is None


def test_missing_language_file_is_named(tmp_path):
    (tmp_path / "train.en.jsonl").write_text("")
    problem = check(["model=tiny", "data=jsonl", f"data.dir={tmp_path}", "languages.eval=[en]"])
    assert problem.startswith("data.dir:") and "validation.en.jsonl, test.en.jsonl" in problem


def test_sweep_grid_expands_like_hydra():
    from xlt.cli.precheck import job_overrides

    jobs = job_overrides(["model=mbert,xlmr", "technique=fine_tune,feature_extraction",
                          "train.batch_size=8,16"], True, {})
    assert len(jobs) == 8 and ["model=xlmr", "technique=feature_extraction", "train.batch_size=16"] in jobs
    # Sweeper params from a preset are overridden by the command line, as in Hydra.
    blog = {"model": "mbert,mbert_uncased,xlmr,distilmbert", "technique": "fine_tune,feature_extraction"}
    assert len(job_overrides([], True, blog)) == 8
    assert len(job_overrides(["model=xlmr"], True, blog)) == 2


def test_cli_exits_2_with_one_line_and_writes_nothing(tmp_path):
    result = run_xlt("-m", "experiment=smoke", "train.batch_size=16,-2", f"output_dir={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip() == "xlt: error: train.batch_size: must be a positive number, got -2"
    assert "Traceback" not in result.stderr + result.stdout
    assert not any(tmp_path.iterdir())  # no MLflow store, no job directory, no run left RUNNING


def test_blog_preset_matches_the_seed_experiment():
    from hydra import compose, initialize_config_dir

    from xlt.cli.precheck import CONF_DIR
    from xlt.config import register_schema, validate

    register_schema()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        raw = compose("config", overrides=["experiment=blog"], return_hydra_config=True)
    cfg = validate(raw)
    assert (cfg.train.max_train_samples, cfg.train.epochs, cfg.train.batch_size) == (15000, 3, 8)
    assert (cfg.train.learning_rate, cfg.train.eval_steps) == (5e-5, 500)
    assert cfg.languages.eval == ["en", "de", "fr", "es", "ar", "zh"] and cfg.data.source == "hub"
    assert dict(raw.hydra.sweeper.params) == {"model": "mbert,mbert_uncased,xlmr,distilmbert",
                                              "technique": "fine_tune,feature_extraction"}


def test_runs_are_named_after_what_tells_them_apart(tmp_path):
    from hydra import compose, initialize_config_dir

    from xlt.cli.precheck import CONF_DIR
    from xlt.config import register_schema, validate
    from xlt.tracking.job_run import run_name

    (tmp_path / "my-checkpoint").mkdir()
    (tmp_path / "my-checkpoint" / "config.json").write_text("{}")
    overrides = ["model=local", f"model.path={tmp_path / 'my-checkpoint'}", "technique=fine_tune", "data=sample",
                 "train.seed=2", "train.learning_rate=1e-3", f"output_dir={tmp_path}", "experiment=smoke"]
    register_schema()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = validate(compose("config", overrides=overrides))
    assert cfg.model.name == "my-checkpoint"  # not the preset's placeholder "local"
    assert run_name(cfg, overrides) == "my-checkpoint-fine_tune seed=2 learning_rate=1e-3"
