"""Plugins own their options (issue 32): every option and preset composes against the schema, each
default is written once, a technique's training budget reaches `train` whatever the order, and a
technique or protocol of one's own gets typed options and one-line errors. In-process: Hydra's
Compose API and xlt's validation, no job runs."""
import dataclasses
import json
import re
import sys
import textwrap
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from xlt.cli.precheck import check
from xlt.config import CONF_DIR, SAMPLE_DIR, XltConfig, plugins, register_schema, validate
from xlt.config.schema import _TASK_FIELDS_SINCE_KINDS
from xlt.protocols import validate_job

register_schema()
HERE = Path(__file__).parent
# What the docs (README: Comparing techniques) state as each technique's own training budget.
BUDGETS = {"fine_tune": (5e-5, 3.0, 32, "none"), "feature_extraction": (1e-3, 10.0, 32, "selected"),
           "lora": (1e-3, 3.0, 16, "selected"), "bitfit": (2e-3, 3.0, 16, "selected")}
MOVED = ("protocol.shots", "protocol.target", "technique.cache_features", "technique.lora")  # now their plugins'


def composed(*overrides, config_dir=CONF_DIR):
    with initialize_config_dir(str(config_dir), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def flat(node, prefix=""):
    out = {}
    for key, value in node.items():
        out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key: value})
    return out


def test_every_option_of_every_group_and_every_preset_composes_and_validates():
    local = {"model=local": ["model.path=" + str(SAMPLE_DIR)], "data=jsonl": [f"data.dir={SAMPLE_DIR}"],
             "data=conllu": [f"data.dir={SAMPLE_DIR}"]}
    partner = {"languages=pawsx7": ["task=pawsx"], "languages=panx40": ["task=panx"],  # a task's own languages
               "languages=udpos": ["task=udpos"], "languages=xquad11": ["task=xquad"], "languages=mlqa7": ["task=mlqa"],
               "languages=tydiqa9": ["task=tydiqa"]}
    checked = 0
    for group in sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "hydra"):
        for option in sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml")):
            cfg = composed(f"{group}={option}", *local.get(f"{group}={option}", []), "languages.eval=[en,de]")
            if group == "model" and option == "local":  # a checkpoint directory is the user's to give
                assert cfg.model.source == "local"
                continue
            overrides = [] if group == "model" else ["model=tiny"]
            sized = [] if group in ("experiment", "languages", "task") else ["languages.eval=[en,de]"]
            job = validate(composed(f"{group}={option}", *overrides, *local.get(f"{group}={option}", []), *sized,
                                    *partner.get(f"{group}={option}", [])))
            assert isinstance(job, XltConfig) and job.train.learning_rate > 0
            checked += 1
    assert checked >= 25


@pytest.mark.parametrize("technique", sorted(BUDGETS))
def test_each_technique_brings_its_documented_budget_whatever_the_defaults_order(technique):
    cfg = composed(f"technique={technique}", "model=tiny")
    assert tuple(cfg.technique.train.values()) == BUDGETS[technique]  # what `--cfg job` shows
    job = validate(cfg)
    assert (job.train.learning_rate, job.train.epochs, job.train.batch_size, job.train.save) == BUDGETS[technique]
    # The command line sets one field for every technique; the others stay the technique's own.
    job = validate(composed(f"technique={technique}", "model=tiny", "train.learning_rate=7e-4"))
    assert (job.train.learning_rate, job.train.epochs) == (7e-4, BUDGETS[technique][1])


def test_a_budget_factor_keeps_each_techniques_ratio_of_epochs():
    epochs = {t: validate(composed(f"technique={t}", "model=tiny", "train.budget=0.1")).train.epochs for t in BUDGETS}
    assert epochs == pytest.approx({t: 0.1 * b[1] for t, b in BUDGETS.items()})


def test_every_preset_and_option_validates_as_before_the_options_moved():
    """Each job's validated config equals what xlt gave before the move (a snapshot of commit
    3909463), but for the options now their plugins' (absent where the plugin lacks them) and
    train.budget (new); the technique's training defaults are folded into `train` as before."""
    before = json.loads((HERE / "configs_before_plugin_options.json").read_text())
    for name, fields in before["cases"].items():
        old = {**before["common"], **fields}
        new = flat(dataclasses.asdict(validate_job(composed(*name.split()))))
        new.pop("model.name", None)
        assert new.pop("train.budget") == 1.0
        for key, default in _TASK_FIELDS_SINCE_KINDS.items():  # the tasks layer's, at their defaults (issue 34)
            assert new.pop(f"task.{key}", default) == default
        assert {k: v for k, v in new.items() if not k.startswith("technique.train.")} == \
               {k: v for k, v in old.items() if not k.startswith(MOVED) or k in new}, name
        assert all(old[k] in (None, 0, True) for k in old if k.startswith(MOVED) and k not in new), name


def test_no_default_is_written_both_in_a_groups_yaml_and_in_the_schema():
    """A YAML value equal to the default of the dataclass field it sets is written twice: none is."""
    twice = []
    for path in sorted(CONF_DIR.glob("*/*.yaml")):
        if path.parent.name in ("experiment", "hparams_search"):  # presets set values on purpose
            continue
        group = path.parent.name
        own = OmegaConf.to_container(OmegaConf.load(path))
        own.pop("defaults", None)
        schema = OmegaConf.to_container(composed(f"{group}=" + path.stem, "model.path=x", "data.dir=x")[group]) \
            if group != "hydra" else {}
        default = XltConfig.__dataclass_fields__[group]
        base = default.default_factory() if default.default_factory is not dataclasses.MISSING else None
        base = dataclasses.asdict(base) if dataclasses.is_dataclass(base) else {}
        options = plugins.registered_options().get(group, {}).get(path.stem)
        base = {**base, **(dataclasses.asdict(options()) if options else {})}
        for key, value in flat(own).items():
            if key != "name" and key in flat(base) and flat(base)[key] == value and key in flat(schema):
                twice.append(f"{path.relative_to(CONF_DIR)}: {key}")
    assert twice == [], twice


def test_the_config_layer_names_no_technique_and_no_protocol():
    names = plugins.builtin_modules("xlt.techniques") + plugins.builtin_modules("xlt.protocols")
    for path in (CONF_DIR.parent / "xlt" / "config").glob("*.py"):
        text = path.read_text()
        assert [n for n in names if re.search(rf"\b{n}\b", text)] == [], path


TECHNIQUE = '''
"""Train only the top encoder layers (and, if asked, the embeddings) with the head."""
from dataclasses import dataclass

from xlt.config import TechniqueConfig
from xlt.model.freezing import freeze_encoder


@dataclass
class Options(TechniqueConfig):
    layers: int = 1
    train_embeddings: bool = False


def prepare(model, newly_initialised, cfg):
    n = model.config.num_hidden_layers
    keep = [f"{model.base_model_prefix}.encoder.layer.{i}." for i in range(n - cfg.layers, n)]
    keep += [f"{model.base_model_prefix}.embeddings."] if cfg.train_embeddings else []
    freeze_encoder(model, newly_initialised, keep=keep)


def caches_features(cfg):
    return False
'''
PROTOCOL = '''
"""English alone, a fixed number of its rows: a learning-curve protocol."""
from dataclasses import dataclass

from xlt.config import ProtocolConfig
from xlt.protocols import Part

NEEDS_TARGET = False
SELECTION = "English validation, as zero-shot"


@dataclass
class Options(ProtocolConfig):
    rows: int = 40


def train_parts(cfg):
    return [Part(cfg.data.train_language, cfg.protocol.rows, cfg.train.seed)]
'''


def plugins_of_ones_own(root: Path, monkeypatch) -> Path:
    """top_layers (two typed options) and english_rows (one), outside xlt, with their configs."""
    (root / "top_layers.py").write_text(textwrap.dedent(TECHNIQUE))
    (root / "english_rows.py").write_text(textwrap.dedent(PROTOCOL))
    for group, text in [("technique/top_layers", "name: top_layers\nmodule: top_layers\nlayers: 1\n"
                                                  "train_embeddings: false\ntrain:\n  learning_rate: 2.0e-3\n"),
                        ("protocol/english_rows", "name: english_rows\nmodule: english_rows\nrows: 40\n")]:
        (root / "conf" / group).parent.mkdir(parents=True, exist_ok=True)
        (root / "conf" / f"{group}.yaml").write_text(text)
    monkeypatch.syspath_prepend(str(root))
    for name in ("top_layers", "english_rows"):  # each test imports its own copy
        monkeypatch.delitem(sys.modules, name, raising=False)
    return root / "conf"


def test_options_of_plugins_of_ones_own_are_typed_from_the_command_line(tmp_path, monkeypatch):
    conf = plugins_of_ones_own(tmp_path, monkeypatch)
    mine = ["model=tiny", "data=sample", "technique=top_layers", "protocol=english_rows",
            f"hydra.searchpath=[file://{conf}]"]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        job = validate_job(compose("config", overrides=[*mine, "technique.layers=2", "protocol.rows=25"]))
    assert (job.technique.layers, job.technique.train_embeddings, job.protocol.rows) == (2, False, 25)
    assert type(job.technique).__module__ == "top_layers" and job.train.learning_rate == 2e-3
    assert check([*mine, "technique.layers=two"]) == ("technique.layers: Value 'two' of type 'str' could not be "
                                                      "converted to Integer")
    assert check([*mine, "technique.layer=2"]) == ("technique.layer: Key 'layer' is not in struct; did you mean "
                                                   "technique.layers?")
    assert check([*mine, "+protocol.row=2"]) == "protocol.row: Key 'row' not in 'Options'; did you mean protocol.rows?"
    assert check([*mine, "protocol.rows=2.5"]) == ("protocol.rows: Value '2.5' of type 'float' could not be "
                                                   "converted to Integer")


@pytest.mark.heavy  # a real job in its own process: in CI's second run
@pytest.mark.slow
def test_plugins_of_ones_own_run_end_to_end_without_touching_xlt(tmp_path, monkeypatch):
    from commands import run_xlt
    from stores import mlflow_runs

    conf = plugins_of_ones_own(tmp_path, monkeypatch)
    result = run_xlt("model=tiny", "data=sample", "technique=top_layers", "technique.layers=2",
                     "protocol=english_rows", "protocol.rows=60", f"hydra.searchpath=[file://{conf}]",
                     "train.epochs=1", "languages.eval=[en,de]", f"output_dir={tmp_path / 'out'}",
                     env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "rows: 60 to train (en)" in result.stdout
    _, (run,) = mlflow_runs(tmp_path / "out", "xlt")
    assert run.info.status == "FINISHED" and run.info.run_name.startswith("tiny-top_layers ")
    params = run.data.params
    assert (params["technique"], params["technique.layers"], params["protocol.rows"]) == ("top_layers", "2", "60")
    assert params["train.learning_rate"] == "0.002" and "technique.train.learning_rate" not in params  # its own

    from xlt.config import ModelConfig, TinyShape, task_preset
    from xlt.data.hub import model_source
    from xlt.model.loading import build_tiny_tokenizer, load_model

    cfg = ModelConfig(name="tiny", source="tiny", tiny=TinyShape())
    model, _ = load_model(cfg, model_source(cfg), build_tiny_tokenizer(cfg.tiny.vocab_size), task_preset("xnli").labels)
    top = tuple(f"bert.encoder.layer.{i}." for i in range(cfg.tiny.num_layers - 2, cfg.tiny.num_layers))
    expected = sum(p.numel() for name, p in model.named_parameters() if name.startswith((*top, "classifier.")))
    assert int(params["model.trainable_params"]) == expected < int(params["model.total_params"])


def test_a_plugin_of_ones_own_missing_a_function_is_one_line_naming_it(tmp_path, monkeypatch):
    conf = plugins_of_ones_own(tmp_path, monkeypatch)
    (tmp_path / "top_layers.py").write_text(TECHNIQUE.replace("def caches_features", "def cached_features"))
    assert check(["model=tiny", "data=sample", "technique=top_layers", f"hydra.searchpath=[file://{conf}]"]) == (
        "technique.module: top_layers lacks caches_features, which a technique defines "
        "(xlt.config.plugins.Technique)")
    (tmp_path / "english_rows.py").write_text(PROTOCOL.replace("SELECTION =", "WHY ="))
    assert check(["model=tiny", "data=sample", "protocol=english_rows", f"hydra.searchpath=[file://{conf}]"]) == (
        "protocol.module: english_rows lacks SELECTION, which a protocol defines "
        "(xlt.config.plugins.TransferProtocol)")


def test_a_plugin_option_in_a_sweep_goes_to_the_jobs_whose_plugin_has_it():
    from xlt.sweep import grid

    def typed(job):
        return validate(composed("model=tiny", "data=sample", *job))

    jobs = grid.fit_plugin_options([["technique=fine_tune", "technique.lora.rank=4"],
                                    ["technique=lora", "technique.lora.rank=4"]], typed)
    assert [job for job, _ in jobs] == [["technique=fine_tune"], ["technique=lora", "technique.lora.rank=4"]]
    assert jobs[1][1].technique.lora.rank == 4
    with pytest.raises(Exception, match="lora"):  # no job's technique has it: the single run's error
        grid.fit_plugin_options([["technique=fine_tune", "technique.lora.rank=4"]], typed)
