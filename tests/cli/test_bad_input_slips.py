"""Bad input that slipped through before issue 39: each one line naming the file or field, before any
job, nothing written. In-process, through the check every command line gets (xlt.cli.precheck)."""
import json
import shutil

import pytest

from xlt.cli.precheck import check
from xlt.config import SAMPLE_DIR

TINY = ["model=tiny", "data=sample"]


def jsonl_dir(tmp_path, last_line: bytes):
    """The bundled sample's English files, with `last_line` appended to test.en.jsonl; its line number."""
    for name in ("train.en", "validation.en", "test.en"):
        shutil.copy(SAMPLE_DIR / f"{name}.jsonl", tmp_path)
    path = tmp_path / "test.en.jsonl"
    number = len(path.read_bytes().splitlines()) + 1
    with open(path, "ab") as f:
        f.write(last_line + b"\n")
    return ["model=tiny", "data=jsonl", f"data.dir={tmp_path}", "languages.eval=[en]", f"output_dir={tmp_path}/o"], \
        f"{path}:{number}"


@pytest.mark.parametrize("line, problem", [
    (b'{"premise": "p", "hypothesis": "h", "label": 0, "label": 2}', 'repeats the key "label"; write each key once'),
    (b'{"premise": "caf\xe9", "hypothesis": "h", "label": 0}', "is not UTF-8 (byte 0xe9 at column 17); save the "
                                                               "file as UTF-8"),
    (b'{"premise": "\\ud800", "hypothesis": "h", "label": 0}', "has a lone surrogate (\\ud800), which is no "
                                                               "character: fix the escape"),
])
def test_a_bad_jsonl_line_names_its_file_and_line(tmp_path, line, problem):
    overrides, where = jsonl_dir(tmp_path, line)
    assert check(overrides) == f"data.dir: {where} {problem}"
    assert not (tmp_path / "o").exists()


def test_a_corrupt_config_json_names_the_file(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert",\n  oops\n}')
    assert check(["model=local", f"model.path={tmp_path}", "data=sample"]) == (
        f"model.path: {tmp_path / 'config.json'} is not valid JSON (Expecting property name enclosed in double "
        "quotes at line 2 column 3); save the checkpoint again (save_pretrained)")


@pytest.mark.parametrize("overrides, line", [
    (["data.dir=/tmp"], "data.dir: is read only with data=jsonl (this job reads data=sample, source sample); add "
                        "data=jsonl, or leave data.dir out"),
    (["model=local", "model.path=/etc/hostname"], "model.path: '/etc/hostname' is a file; give the checkpoint's "
                                                  "directory (the one holding config.json)"),
    (["model.name=" + "m" * 300], "model.name: is a label for run names and job directories: at most 100 bytes and "
                                  "no '/' (got 300 bytes); give a short one"),
])
def test_a_field_that_would_be_ignored_or_fail_late_is_one_line(overrides, line):
    assert check([*TINY, *overrides]) == line


def test_a_protocol_that_makes_no_job_of_the_languages_is_an_error_not_an_empty_sweep():
    assert check([*TINY, "protocol=translate_train", "languages.eval=[en]"], multirun=True) == (
        "languages.eval: protocol translate_train makes no job of languages.eval=[en]: it needs a target language "
        "beside en, e.g. languages.eval=[en,de]")


def test_a_tokenizer_without_a_padding_token_is_one_line(tmp_path):
    from standins.checkpoints import tiny_checkpoint

    model = tiny_checkpoint(tmp_path / "ckpt")
    config = json.loads((model / "tokenizer_config.json").read_text())
    config.pop("pad_token", None)
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    tokenizer = json.loads((model / "tokenizer.json").read_text())
    tokenizer["padding"] = None
    (model / "tokenizer.json").write_text(json.dumps(tokenizer))
    (model / "special_tokens_map.json").unlink(missing_ok=True)
    assert check(["model=local", f"model.path={model}", "data=sample"]) == (
        f"model.path: the tokenizer in {model} has no padding token, which batches need (a decoder's?); give an "
        "encoder checkpoint, or save its tokenizer with one")
