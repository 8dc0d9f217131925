"""The documentation cannot go stale (issue 38): its references are generated from the code and list
every field, its commands compose and validate as written, its defaults are the code's. In-process,
but for the documented shell recipe, which runs as written."""
import re
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from xlt.cli.precheck import check, per_job_plugin_options
from xlt.cli.reference import config_reference, listed_fields
from xlt.config import CONF_DIR, SAMPLE_DIR, plugins, register_schema

from conftest import REPO, SHARED, needs_shared

DOCS = REPO / "docs"
PAGES = [DOCS / "getting-started.md", *sorted((DOCS / "how-to").glob("*.md"))]
# Commands that need what a laptop lacks are documented as such: an extra, a cluster, a job directory.
NEEDS_ELSEWHERE = ("is not installed: pip install", )


def bash_blocks(page):
    return [re.sub(r"\\\n\s*", " ", block) for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S)]


def run_commands():
    """(page, argv) of every `python run.py ...` line of the getting-started and how-to pages."""
    found = []
    for page in PAGES:
        for block in bash_blocks(page):
            for line in block.splitlines():
                line = line.split("  #")[0].strip()
                if line.startswith("python run.py"):
                    found.append((page.name, line))
    return found


def test_the_configuration_reference_lists_every_field_of_the_techniques_preset():
    register_schema()
    listed = set(listed_fields(config_reference()))
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        for technique in plugins.builtin_modules("xlt.techniques"):
            cfg = OmegaConf.to_container(compose("config", ["experiment=techniques", f"technique={technique}"]))
            keys = {k for k in _flat(cfg)}
            assert keys - listed == set(), technique


def _flat(node, prefix=""):
    for key, value in node.items():
        if isinstance(value, dict) and value:
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield prefix + key


@needs_shared
@pytest.mark.parametrize("page, command", run_commands(), ids=[f"{p}: {c[14:60]}" for p, c in run_commands()])
def test_every_documented_command_composes_and_validates_as_written(page, command, monkeypatch, tmp_path):
    import shlex

    argv = shlex.split(command)[2:]
    if {"--help", "--config-path"} & set(argv):
        pytest.skip("prints or replays a job directory: nothing to compose")
    monkeypatch.chdir(REPO)  # the docs' relative paths: ../shared/...
    e5, xnli = SHARED / "models" / "multilingual-e5-small-xnli", SHARED / "data" / "xnli"
    placeholders = {"model.path=/models/my-checkpoint": f"model.path={e5}",
                    "data.dir=/data/xnli": f"data.dir={xnli}"}  # a reader's own paths
    argv = [placeholders.get(a, a) for a in per_job_plugin_options(argv)]
    argv = [_qa_data(_token_data(a, tmp_path), tmp_path) for a in argv]
    if "data.dir=mine" in argv:  # the recipe's own folder: see the next test
        recipe(tmp_path)
        argv = [f"data.dir={tmp_path / 'work' / 'mine'}" if a == "data.dir=mine" else a for a in argv]
    multirun = "-m" in argv
    problem = check([a for a in argv if a != "-m"], multirun, machine=False)
    assert problem is None or any(reason in problem for reason in NEEDS_ELSEWHERE), problem


def _token_data(arg: str, tmp_path):
    """The token-tasks page's folders (a reader's own): rule-tagged sentences in the layout it documents."""
    from tasks.token_data import CONLLU, write_ner

    if arg == "data.dir=/data/panx":
        return f"data.dir={write_ner(tmp_path / 'panx')}"
    if arg == "data.dir=/data/my-treebank":
        for split in ("train", "validation", "test"):
            for lang in ("en", "de"):
                (tmp_path / f"{split}.{lang}.conllu").write_text(CONLLU)
        return f"data.dir={tmp_path}"
    return arg


def _qa_data(arg: str, tmp_path):
    """The question-answering page's folders (a reader's own): rule-made questions in its layout; TyDiQA's
    languages beyond the sample's get its English test file (the command is composed, not trained)."""
    from tasks.qa_data import span_task

    if arg not in ("data.dir=/data/xquad", "data.dir=/data/tydiqa-goldp"):
        return arg
    folder = span_task(SAMPLE_DIR, tmp_path / "qa", {"train": 20, "validation": 10, "test": 10}, ["en", "de", "ar"])
    for lang in ("bn", "fi", "id", "ko", "ru", "sw", "te"):
        (folder / f"test.{lang}.jsonl").write_text((folder / "test.en.jsonl").read_text())
    return f"data.dir={folder}"


def recipe(tmp_path):
    """The own-data page's shell recipe, run as written in a folder beside a `shared` copy."""
    (tmp_path / "shared").symlink_to(SHARED)
    (tmp_path / "work").mkdir()
    (block,) = [b for b in bash_blocks(DOCS / "how-to" / "own-data.md") if "tail -n" in b]
    shell = "\n".join(line for line in block.splitlines() if not line.startswith("python run.py"))
    subprocess.run(["bash", "-euc", shell], cwd=tmp_path / "work", check=True)


@needs_shared
def test_the_recipe_for_target_language_training_rows_gives_a_few_shot_sweep_its_rows(tmp_path, monkeypatch):
    recipe(tmp_path)
    mine = tmp_path / "work" / "mine"
    assert sorted(p.name for p in mine.glob("train.*.jsonl")) == ["train.de.jsonl", "train.en.jsonl", "train.fr.jsonl"]
    validation = set((mine / "validation.de.jsonl").read_text().splitlines())
    assert not validation & set((mine / "train.de.jsonl").read_text().splitlines())  # no row in both
    argv = per_job_plugin_options(["model=tiny", "data=jsonl", f"data.dir={mine}", "languages.eval=[en,de,fr]",
                                   "protocol=few_shot", "protocol.shots=0,16,64", f"output_dir={tmp_path / 'o'}"])
    assert check(argv, multirun=True) is None  # its files read and checked, as before a real sweep


def test_the_documented_training_budgets_are_the_techniques_own():
    """The table of docs/how-to/techniques.md against each technique's Options."""
    table = (DOCS / "how-to" / "techniques.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| [^|]+ \| ([\d.e-]+) \| ([\d.]+) \| (\d+) \| `(\w+)` \|$", table, re.M)
    documented = {name: (float(lr), float(epochs), int(batch), save) for name, lr, epochs, batch, save in rows}
    own = {name: (o().train.learning_rate, o().train.epochs, o().train.batch_size, o().train.save)
           for name, o in plugins.registered_options()["technique"].items()}
    assert documented == own


def test_the_readme_is_a_front_door():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for target in re.findall(r"\]\(((?:docs/)[^)#]+)\)", readme):
        assert (REPO / target).is_file(), target


def test_the_site_builds_strictly_offline(tmp_path):
    pytest.importorskip("mkdocs", reason='the docs extra: pip install -e ".[docs]" (.ci/run installs it)')
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path)],
                            cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "train.budget" in (tmp_path / "reference" / "configuration" / "index.html").read_text()
