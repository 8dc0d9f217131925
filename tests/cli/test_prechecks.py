"""Checks before any job (issue 25): each bad input is one line naming the field and the fix,
found by the real entry point's check before anything is written."""
import json
import shutil

import pytest
import torch

from xlt.cli.precheck import check
from xlt.config import SAMPLE_DIR

from standins.checkpoints import tiny_checkpoint


def local_checkpoint(path, tokenizer=True, architectures=None, positions=None, vocab=None):
    """A small BERT saved as a user would have it, then changed: no tokenizer, other config fields."""
    tiny_checkpoint(path)
    if not tokenizer:
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            (path / name).unlink(missing_ok=True)
    config = json.loads((path / "config.json").read_text())
    changes = {"architectures": architectures, "max_position_embeddings": positions, "vocab_size": vocab}
    config.update({k: v for k, v in changes.items() if v is not None})
    (path / "config.json").write_text(json.dumps(config))
    return path


def problem(tmp_path, *overrides):
    return check(["model=tiny", "data=sample", f"output_dir={tmp_path / 'out'}", *overrides])


def test_a_model_directory_without_a_tokenizer_is_refused(tmp_path):
    path = local_checkpoint(tmp_path / "m", tokenizer=False)
    assert problem(tmp_path, "model=local", f"model.path={path}") == (
        f"model.path: {path} has no tokenizer files (tokenizer.json, vocab.txt, sentencepiece.bpe.model, ...); "
        "save the tokenizer beside the model: tokenizer.save_pretrained(DIR)")


def test_a_tokenizer_larger_than_the_embeddings_is_refused(tmp_path):
    path = local_checkpoint(tmp_path / "m", vocab=50)
    assert problem(tmp_path, "model=local", f"model.path={path}") == (
        f"model.path: the tokenizer in {path} has 300 tokens but the model embeds 50: they do not belong together")


def test_max_length_beyond_the_models_positions_is_refused(tmp_path):
    path = local_checkpoint(tmp_path / "m", positions=64)
    assert problem(tmp_path, "model=local", f"model.path={path}", "train.max_length=128") == (
        "train.max_length: 128 exceeds 64, the positions m has; use train.max_length=64 or less")
    assert problem(tmp_path, "model=local", f"model.path={path}", "train.max_length=64") is None


def test_a_decoder_checkpoint_is_refused(tmp_path):
    path = local_checkpoint(tmp_path / "m", architectures=["GPT2LMHeadModel"])
    assert problem(tmp_path, "model=local", f"model.path={path}") == (
        f"model.path: '{path}' is a decoder (GPT2LMHeadModel); xlt trains encoders: give a BERT-, XLM-R- or "
        "DistilBERT-like checkpoint")


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_an_empty_data_file_is_refused(tmp_path, content):
    data = shutil.copytree(SAMPLE_DIR, tmp_path / "data")
    (data / "test.de.jsonl").write_text(content)
    assert problem(tmp_path, "data=jsonl", f"data.dir={data}") == (
        f"data.dir: {data / 'test.de.jsonl'} has no rows; give it one JSON object per line, or leave its "
        "language out of languages.eval")


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_a_seed_out_of_range_is_refused(tmp_path, seed):
    assert problem(tmp_path, f"train.seed={seed}") == f"train.seed: is a whole number in [0, 4294967295], got {seed}"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU runs fp16 and bf16")
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_without_a_gpu_is_refused_where_the_jobs_run_here(tmp_path, precision):
    assert problem(tmp_path, f"train.precision={precision}") == (
        f"train.precision: {precision} needs a GPU and this machine has none; use train.precision=auto "
        "(bf16 where a GPU has it, else fp32) or fp32")
    # A cluster's nodes have their own GPUs: the sweep's machine does not judge them.
    assert check(["model=tiny", "data=sample", f"train.precision={precision}", "hydra/launcher=slurm",
                  f"output_dir={tmp_path / 'out'}"], multirun=True) in (None, (
                      "hydra/launcher: SLURM's sbatch is not on this machine's PATH: submit from a login node of "
                      "the cluster, or try the grid here with hydra/launcher=submitit_local"))


def test_an_output_dir_that_cannot_be_written_is_refused(tmp_path):
    """/sys refuses new files even to root (whose permission bits are never checked)."""
    assert problem(tmp_path, "output_dir=/sys/xlt-logs") == (
        "output_dir: '/sys' is not writable (Permission denied); give a directory you can write")


# -- the store and the disk (issue 25, item 7) -----------------------------------------------------

def _store_with_runs(path, experiment="xlt"):
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{path}")
    found = client.create_experiment(experiment)
    for _ in range(40):  # pages enough that damage lands inside a table
        client.create_run(found)
    return client, found


def test_a_store_that_is_not_a_database_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mlflow.db").write_text("not a database")
    store = tmp_path / "out" / "mlflow.db"
    assert problem(tmp_path) == (f"tracking.uri: {store} is not an SQLite database; restore it from a backup, "
                                 "or move it away and start a new store")


def test_a_damaged_store_is_refused(tmp_path):
    import os

    store = tmp_path / "out" / "mlflow.db"
    store.parent.mkdir()
    _store_with_runs(store)
    with open(store, "r+b") as f:  # pages past the header overwritten, as a crash mid-write leaves them
        f.seek(4096 * 3)
        f.write(os.urandom(4096 * 4))
    said = problem(tmp_path)
    assert said.startswith(f"tracking.uri: {store} is damaged (") and "\n" not in said
    assert said.endswith("); restore it from a backup, or move it away and start a new store")


def test_a_deleted_experiment_is_refused_with_the_restore_command(tmp_path):
    store = tmp_path / "out" / "mlflow.db"
    store.parent.mkdir()
    client, found = _store_with_runs(store, "gone")
    client.delete_experiment(found)
    uri = f"sqlite:///{store}"
    assert problem(tmp_path, "tracking.experiment=gone") == (
        f"tracking.experiment: experiment 'gone' is deleted in {uri}: restore it with `MLFLOW_TRACKING_URI={uri} "
        f"mlflow experiments restore --experiment-id {found}`, or name another tracking.experiment")
    assert problem(tmp_path, "tracking.experiment=other") is None


def _mount_tmpfs(where, size="1m"):
    import subprocess

    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or done.returncode})")
    return lambda *options: subprocess.run(["mount", "-o", ",".join(["remount", *options]), str(where)], check=True)


def test_a_read_only_store_is_refused(tmp_path):
    import subprocess

    remount = _mount_tmpfs(tmp_path / "out", "8m")
    try:
        _store_with_runs(tmp_path / "made.db")
        shutil.copyfile(tmp_path / "made.db", tmp_path / "out" / "mlflow.db")
        remount("ro")
        store = tmp_path / "out" / "mlflow.db"
        assert problem(tmp_path, "output_dir=/tmp", f"tracking.uri=sqlite:///{store}") == (
            f"tracking.uri: {store} cannot be written (attempt to write a readonly database); make it and its "
            "directory writable, or give another tracking.uri")
    finally:
        subprocess.run(["umount", "-l", str(tmp_path / "out")])


def test_a_full_disk_is_refused_before_anything_is_written(tmp_path):
    import subprocess

    _mount_tmpfs(tmp_path / "full", "1m")
    try:
        assert problem(tmp_path, f"output_dir={tmp_path / 'full' / 'logs'}") == (
            f"output_dir: {tmp_path / 'full'} has no room to write (1.0 MB free); free some space or give "
            "another output_dir (at least 50 MB)")
        assert list((tmp_path / "full").iterdir()) == []
    finally:
        subprocess.run(["umount", "-l", str(tmp_path / "full")])


def test_a_file_size_limit_is_refused_like_a_full_disk(tmp_path):
    """No mount needed: a process limited to 512 KiB files (ulimit -f) cannot write a checkpoint."""
    import subprocess
    import sys

    from conftest import REPO

    code = ("import resource; resource.setrlimit(resource.RLIMIT_FSIZE, (512 * 1024, 512 * 1024)); "
            "import runpy, sys; sys.argv = ['run.py', 'model=tiny', 'data=sample', 'output_dir=%s']; "
            "runpy.run_path('run.py', run_name='__main__')" % (tmp_path / "out"))
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr == (f"xlt: error: output_dir: {tmp_path} has no room to write (File too large); free some "
                           "space or give another output_dir (at least 50 MB)\n")
    assert not (tmp_path / "out").exists()
