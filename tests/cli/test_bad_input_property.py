"""Property: whatever is malformed, the command ends with exit 2 and one line, nothing written.

Random malformed JSONL lines and random bad overrides go through the real entry point's check
(`check_command_line`, what `python run.py` calls first), in process, so many cases run in seconds.
"""
import json
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xlt.cli.precheck import check_command_line
from xlt.config import SAMPLE_DIR

PROFILE = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# A malformed line costs a sweep's whole check (about 1 s): fewer examples, each strategy still drawn.
FILES = settings(PROFILE, max_examples=8)
GOOD = {"premise": "p", "hypothesis": "h", "label": 0}

not_a_label = st.one_of(st.floats(allow_nan=False), st.booleans(), st.text(max_size=5), st.none(),
                        st.integers().filter(lambda n: n not in (0, 1, 2)), st.lists(st.integers(), max_size=2))
bad_rows = st.one_of(
    not_a_label.map(lambda label: json.dumps({**GOOD, "label": label})),
    st.sampled_from(["premise", "hypothesis", "label"]).map(
        lambda key: json.dumps({k: v for k, v in GOOD.items() if k != key})),
    st.one_of(st.integers(), st.none(), st.lists(st.text(max_size=3))).map(
        lambda value: json.dumps({**GOOD, "premise": value})),
    st.one_of(st.lists(st.integers(), max_size=3), st.integers(), st.text(max_size=8)).map(json.dumps),
    st.text(min_size=1, max_size=30).filter(lambda t: t.strip() and not _parses(t)),
)


def _parses(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


def expect_one_line_exit_2(argv, capsys, output_dir):
    with pytest.raises(SystemExit) as exited:
        check_command_line(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("xlt: error: "), err
    assert "Traceback" not in err
    assert not any(output_dir.iterdir())  # no store, no job directory, no run
    return err


@FILES
@given(row=bad_rows, where=st.integers(min_value=0, max_value=99))
def test_a_malformed_jsonl_line_is_one_line_naming_file_and_line(tmp_path_factory, capsys, row, where):
    data, out = tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("out")
    for name in ("train.en", "validation.en", "test.en"):
        shutil.copy(SAMPLE_DIR / f"{name}.jsonl", data)
    lines = (data / "validation.en.jsonl").read_text().splitlines()
    lines.insert(where, row.replace("\n", " "))
    (data / "validation.en.jsonl").write_text("\n".join(lines) + "\n")
    err = expect_one_line_exit_2(["-m", "model=tiny", "technique=fine_tune,feature_extraction", "data=jsonl",
                                  f"data.dir={data}", "languages.eval=[en]", f"output_dir={out}"], capsys, out)
    assert f"data.dir: {data}/validation.en.jsonl:{where + 1} " in err


NUMERIC = ["train.batch_size", "train.eval_batch_size", "train.learning_rate", "train.epochs",
           "train.max_length", "train.eval_steps", "train.logging_steps", "data.max_eval_samples",
           "tracking.heartbeat_s"]
LORA = ["technique.lora.rank", "technique.lora.alpha"]  # with technique=lora
bad_overrides = st.one_of(
    st.tuples(st.sampled_from(NUMERIC), st.sampled_from(["0", "-1", "-0.5", "abc", "1e999x", "[1]"])).map("=".join),
    st.tuples(st.sampled_from(["train.warmup", "train.dropout"]), st.sampled_from(["1", "1.5", "-0.1"])).map("=".join),
    st.tuples(st.sampled_from(["model", "technique", "languages", "data", "experiment"]),
              st.from_regex(r"[a-z]{2,8}", fullmatch=True)).map("=".join),
    st.tuples(st.sampled_from(["train.", "model.", "data.", "+train.", ""]),
              st.from_regex(r"[a-z]{1,6}_[a-z]{1,6}", fullmatch=True)).map(lambda t: f"{t[0]}{t[1]}=1"),
    st.sampled_from(["languages.eval=[en,xx]", "train.select=best", "tracking.uri=foo://bar",
                     "languages.eval=en,de", "train.precision=fp8", "model.pooling=max", "train.save=always",
                     "technique.lora.rank=4"]),
    st.tuples(st.just("train.seed"), st.sampled_from(["-1", "-100", "4294967296", "abc"])).map("=".join),
    st.tuples(st.sampled_from(LORA), st.sampled_from(["0", "-1", "abc", "[1]"])).map(
        lambda t: f"technique=lora {t[0]}={t[1]}"),
)


@PROFILE
@given(override=bad_overrides)
def test_a_bad_override_is_one_line_with_exit_2(tmp_path_factory, capsys, override):
    out = tmp_path_factory.mktemp("out")
    # Grid values that happen to be valid ("experiment=blog") are not malformed: skip them.
    if override.split("=")[1] in ("blog", "smoke", "techniques", "tiny", "local", "sample", "jsonl", "xnli6",
                                  "xnli15", "fine_tune", "lora", "bitfit", "mbert", "xlmr"):
        return
    expect_one_line_exit_2(["model=tiny", "data=sample", *override.split(" "), f"output_dir={out}"], capsys, out)
