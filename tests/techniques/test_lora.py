"""Parameter-efficient techniques: LoRA through peft and BitFit; which parameters train on each
architecture, their defaults, and the selected weights saved and reloaded."""
import json

import pytest
import torch
from hydra import compose, initialize_config_dir

from xlt.config import CONF_DIR, register_schema, validate
from xlt.techniques import bitfit, load_technique
from xlt.techniques import lora as lora_technique
from xlt.train.selection import ModelSelection

from commands import run_xlt, xlt_cli
from standins.checkpoints import saved_encoder, tiny_checkpoint
from stores import aim_jobs, assert_findings_heed_alarms, metric_histories, mlflow_runs

HEADS = {"bert": {"classifier"}, "xlmr": {"classifier.dense", "classifier.out_proj"},
         "distilbert": {"pre_classifier", "classifier"}}
# Where `auto` puts adapters: the attention projections each architecture names.
ADAPTED = {"bert": "bert.encoder.layer.{i}.attention.self.{m}", "xlmr": "roberta.encoder.layer.{i}.attention.self.{m}",
           "distilbert": "distilbert.transformer.layer.{i}.attention.{m}"}
AUTO = {"bert": ("query", "value"), "xlmr": ("query", "value"), "distilbert": ("q_lin", "v_lin")}


def lora(rank=8, targets="auto"):
    options = lora_technique.LoraOptions(rank=rank, alpha=16, dropout=0.1, target_modules=targets)
    return lora_technique.Options(name="lora", lora=options)


def trainable_modules(model):
    return {name.rsplit(".", 1)[0] for name, p in model.named_parameters() if p.requires_grad}


def prepared(tmp_path, kind, cfg):
    model, missing = saved_encoder(tmp_path, kind)
    load_technique(cfg).prepare(model, missing, cfg)
    return model


@pytest.mark.parametrize("kind", ["bert", "xlmr", "distilbert"])
def test_lora_adapts_the_attention_projections_each_architecture_names(tmp_path, kind):
    model = prepared(tmp_path, kind, lora(rank=4))
    layers, hidden = model.config.num_hidden_layers, model.config.hidden_size
    adapters = {ADAPTED[kind].format(i=i, m=m) + f".{ab}.default" for i in range(layers) for m in AUTO[kind]
                for ab in ("lora_A", "lora_B")}
    assert trainable_modules(model) == adapters | HEADS[kind]
    adapter_params = sum(p.numel() for n, p in model.named_parameters() if ".lora_" in n)
    assert adapter_params == layers * len(AUTO[kind]) * (4 * hidden + hidden * 4)  # layers x targets x (A + B)
    base = [n for n, _ in model.named_parameters() if n.endswith("base_layer.weight")]
    assert len(base) == layers * len(AUTO[kind])  # the pretrained projections stay, frozen


def test_a_list_of_target_modules_overrides_auto(tmp_path):
    model = prepared(tmp_path, "bert", lora(targets=["query", "key", "value"]))
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[1] for n in trainable_modules(model) if ".lora_" in n}
    assert adapted == {"query", "key", "value"}


@pytest.mark.parametrize("kind", ["bert", "xlmr", "distilbert"])
def test_bitfit_trains_the_encoders_biases_and_the_head(tmp_path, kind):
    model = prepared(tmp_path, kind, bitfit.Options(name="bitfit"))
    prefix = model.base_model_prefix + "."
    trains = {n for n, p in model.named_parameters() if p.requires_grad}
    biases = {n for n, _ in model.named_parameters() if n.startswith(prefix) and n.endswith(".bias")}
    head = {n for n in trains if not n.startswith(prefix)}
    assert trains == biases | head and {n.rsplit(".", 1)[0] for n in head} == HEADS[kind]
    assert not any(n.endswith(".weight") for n in trains - head)


def test_selection_keeps_only_the_adapters_and_the_head(tmp_path):
    model = prepared(tmp_path, "bert", lora(rank=4))
    selection = ModelSelection("en_dev", ["en"], ["en"])
    from types import SimpleNamespace
    selection.on_evaluate(None, SimpleNamespace(global_step=5), None, metrics={"eval_en_accuracy": 0.5}, model=model)
    assert set(selection.best_state) == {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(".lora_" in n or n.startswith("classifier.") for n in selection.best_state)


def composed(*overrides):
    register_schema()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return validate(compose("config", ["model=tiny", "data=sample", *overrides]))


def test_each_technique_resolves_its_own_defaults_and_overrides_win():
    cfg = composed("technique=lora")
    assert (cfg.train.learning_rate, cfg.train.batch_size, cfg.train.save) == (1e-3, 16, "selected")
    assert (cfg.technique.lora.rank, cfg.technique.lora.alpha, cfg.technique.lora.target_modules) == (8, 16, "auto")
    assert composed("technique=fine_tune").train.save == "none"  # hundreds of MB per job: off
    assert composed("technique=feature_extraction").train.save == "selected"
    assert not hasattr(composed("technique=bitfit").technique, "lora")  # LoRA's options are LoRA's
    mine = composed("technique=lora", "technique.lora.rank=4", "technique.lora.target_modules=[query,key]",
                    "train.learning_rate=1e-4", "train.save=none")
    assert (mine.technique.lora.rank, mine.technique.lora.target_modules) == (4, ["query", "key"])
    assert (mine.train.learning_rate, mine.train.save) == (1e-4, "none")


def test_the_techniques_preset_sweeps_every_technique_with_its_own_defaults():
    from omegaconf import OmegaConf

    preset = OmegaConf.load(CONF_DIR / "experiment" / "techniques.yaml")
    swept = preset.hydra.sweeper.params.technique.split(",")
    assert sorted(swept) == sorted(p.stem for p in (CONF_DIR / "technique").glob("*.yaml"))
    assert "learning_rate" not in preset.train and "epochs" not in preset.train  # each technique's own
    rates = {t: composed("experiment=techniques", "model=tiny", "data=sample", f"technique={t}").train.learning_rate
             for t in swept}
    assert rates == {"fine_tune": 5e-5, "feature_extraction": 1e-3, "lora": 1e-3, "bitfit": 2e-3}


def probe(model, tokenizer, pairs):
    first, second = zip(*pairs)
    with torch.no_grad():
        return model(**tokenizer(list(first), list(second), padding=True, return_tensors="pt")).logits


def accuracy_on(model, tokenizer, lang):
    from xlt.config import SAMPLE_DIR, task_preset
    from xlt.data.jsonl import read_jsonl

    rows = read_jsonl(SAMPLE_DIR / f"test.{lang}.jsonl", task_preset("xnli"))
    batch = tokenizer(rows["premise"], rows["hypothesis"], padding=True, truncation=True, max_length=128,
                      return_tensors="pt")
    with torch.no_grad():
        predicted = model(**batch).logits.argmax(-1)
    return (predicted == torch.tensor(rows["label"])).float().mean().item()


@pytest.fixture(scope="module")
def saved_sweep(tmp_path_factory):
    """One sweep of a local checkpoint, four techniques, `train.save=selected`."""
    tmp_path = tmp_path_factory.mktemp("saved")
    base, out = tmp_path / "base", tmp_path / "out"
    tiny_checkpoint(base, seed=0)
    result = run_xlt("-m", "model=local", f"model.path={base}", "data=sample", "languages.eval=[en,de]",
                     "technique=fine_tune,feature_extraction,lora,bitfit", "train.save=selected", "train.epochs=2",
                     "train.learning_rate=2e-3", "train.eval_steps=5", "tracking.experiment=saved",
                     f"output_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    client, runs = mlflow_runs(out, "saved")
    folders = {r.data.params["technique"]: next(out.glob(f"multirun/*/*_{r.data.params['technique']}/selected"))
               for r in runs}
    return base, out, client, {r.data.params["technique"]: r for r in runs}, folders


def probe_of(folder):
    meta = json.loads((folder / "xlt_saved.json").read_text())
    return meta["probe"]["pairs"], torch.tensor(meta["probe"]["logits"])


@pytest.mark.heavy  # one four-job sweep for the four: in CI's second run
@pytest.mark.slow
def test_every_technique_logs_its_selected_weights_and_xlt_reloads_them(saved_sweep):
    """Each folder is the run's MLflow artifact, and xlt.load_saved rebuilds the classifier the job
    tested: the same test accuracy, the same logits."""
    import xlt

    _, _, client, runs, folders = saved_sweep
    for technique, run in runs.items():
        folder = folders[technique]
        logged = {a.path for a in client.list_artifacts(run.info.run_id, "selected")}
        assert logged == {f"selected/{f.name}" for f in folder.iterdir()}
        meta = json.loads((folder / "xlt_saved.json").read_text())
        assert meta["run_id"] == run.info.run_id and meta["step"] == run.data.metrics["test/selected_step"]
        model, tokenizer = xlt.load_saved(folder)
        assert accuracy_on(model, tokenizer, "en") == pytest.approx(run.data.metrics["test/en/accuracy"])
        pairs, logits = probe_of(folder)
        assert torch.allclose(probe(model, tokenizer, pairs), logits, atol=1e-5)
    sizes = {t: sum(f.stat().st_size for f in folder.iterdir()) for t, folder in folders.items()}
    assert sizes["feature_extraction"] < sizes["bitfit"] < sizes["fine_tune"] and sizes["lora"] < sizes["fine_tune"]


@pytest.mark.heavy  # one four-job sweep for the four: in CI's second run
@pytest.mark.slow
def test_the_libraries_own_loaders_read_the_saved_folders(saved_sweep):
    """LoRA's folder through peft's PeftModel, fine-tuning's through transformers."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    from xlt.model.loading import build_tiny_tokenizer

    base, _, _, _, folders = saved_sweep
    tokenizer = build_tiny_tokenizer(300)
    assert sorted(f.name for f in folders["lora"].iterdir()) == ["adapter_config.json", "adapter_model.safetensors",
                                                                 "xlt_saved.json"]
    with_peft = PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(base, num_labels=3),
                                          folders["lora"]).eval()
    whole = AutoModelForSequenceClassification.from_pretrained(folders["fine_tune"]).eval()
    for model, technique in ((with_peft, "lora"), (whole, "fine_tune")):
        pairs, logits = probe_of(folders[technique])
        assert torch.allclose(probe(model, tokenizer, pairs), logits, atol=1e-5), technique


@pytest.mark.heavy  # one four-job sweep for the four: in CI's second run
@pytest.mark.slow
def test_a_changed_base_checkpoint_is_refused(saved_sweep, tmp_path):
    import shutil

    import xlt
    from xlt.core.errors import ConfigError

    _, _, _, _, folders = saved_sweep
    tiny_checkpoint(tmp_path / "other", seed=1)
    folder = shutil.copytree(folders["feature_extraction"], tmp_path / "selected")
    meta = json.loads((folder / "xlt_saved.json").read_text())
    meta["source"]["path"] = meta["model"]["path"] = str(tmp_path / "other")  # the head on other weights
    (folder / "xlt_saved.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="the reloaded classifier's logits differ from the job's"):
        xlt.load_saved(folder)


@pytest.mark.heavy  # one four-job sweep for the four: in CI's second run
@pytest.mark.slow
def test_lora_runs_sync_to_aim_and_reproduce(saved_sweep, tmp_path):

    _, out, client, runs, _ = saved_sweep
    aim_runs = {r["mlflow_run_id"]: r for r in aim_jobs(out / "aim")}
    assert sorted(aim_runs) == sorted(r.info.run_id for r in runs.values())
    lora_run = runs["lora"]
    assert aim_runs[lora_run.info.run_id]["params"]["technique.lora.rank"] == 8
    assert lora_run.info.run_name.startswith("base-lora")
    again = xlt_cli("reproduce", lora_run.info.run_id, "--mlflow-tracking-uri", f"sqlite:///{out}/mlflow.db",
                    "tracking.experiment=again", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    _, (copy,) = mlflow_runs(out, "again")
    assert metric_histories(client, copy) == metric_histories(client, lora_run)


@pytest.mark.heavy  # three runs of the tiny model: in CI's second run
@pytest.mark.slow
def test_a_stopped_lora_run_resumes_to_the_same_metrics_as_an_uninterrupted_one(tmp_path):
    common = ["experiment=smoke", "technique=lora", "train.seed=1", "train.save=selected"]
    stopped = run_xlt(*common, f"output_dir={tmp_path}", fault="sigterm:*:12")
    assert stopped.returncode == 130, stopped.stderr[-3000:]
    client, (killed,) = mlflow_runs(tmp_path, "smoke")
    assert killed.info.status == "KILLED" and killed.data.tags["xlt.checkpoint"].endswith("checkpoint-13")

    resumed = run_xlt(*common, f"output_dir={tmp_path}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming run {killed.info.run_id}" in resumed.stdout + resumed.stderr
    _, (run,) = mlflow_runs(tmp_path, "smoke")
    straight = run_xlt(*common, "tracking.experiment=straight", f"output_dir={tmp_path}")
    assert straight.returncode == 0, straight.stderr[-3000:]
    _, (reference,) = mlflow_runs(tmp_path, "straight")
    assert run.info.run_id == killed.info.run_id and run.info.status == "FINISHED"
    assert metric_histories(client, run) == metric_histories(client, reference)
    assert {a.path for a in client.list_artifacts(run.info.run_id, "selected")} == {
        a.path for a in client.list_artifacts(reference.info.run_id, "selected")}


@pytest.mark.heavy  # shares the four-job sweep above
@pytest.mark.slow
def test_the_sweeps_report_compares_all_four_techniques(saved_sweep):
    """One row per technique with its runs' numbers; each technique in the findings; the learning rate
    the sweep set for all is no swept field, and neither are the save defaults."""
    import re

    _, out, _, runs, _ = saved_sweep
    (markdown,) = [p.read_text() for p in out.glob("multirun/*/report/report.md")]
    rows = {m[1]: m[2] for m in re.finditer(r"^\| base \| (\w+) \| 1 \| ([^|]+) \|", markdown, re.M)}
    assert {t: float(rows[t].strip("* ").split(" ±")[0]) for t in rows} == {  # the mean ± half its interval
        t: pytest.approx(r.data.metrics["test/en/accuracy"], abs=5e-4) for t, r in runs.items()}
    findings = assert_findings_heed_alarms(markdown, list(runs.values()))
    healthy = [t for t, r in runs.items() if not r.data.tags.get("xlt.alarms")]
    assert len(healthy) < 2 or all("On base, " in findings and t in findings for t in healthy)
    table_on = markdown[markdown.index("| model |"):]  # the header above quotes the command line
    assert "train.learning_rate" not in findings and "train.save" not in table_on
