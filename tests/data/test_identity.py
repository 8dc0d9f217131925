"""A local checkpoint's identity covers every file that changes its output, in sub-folders too
(issue 39: a changed 1_Pooling/config.json was skipped as finished). In-process."""
from xlt.data.identity import content_hash, model_files


def test_a_pooling_config_in_a_sub_folder_is_part_of_the_checkpoints_identity(tmp_path):
    ckpt = tmp_path / "ckpt"
    (ckpt / "1_Pooling").mkdir(parents=True)
    (ckpt / ".git").mkdir()
    for name, text in [("config.json", "{}"), ("model.safetensors", "w"), ("1_Pooling/config.json",
                       '{"pooling_mode_cls_token": true}'), ("README.md", "about"), (".git/HEAD.txt", "ref")]:
        (ckpt / name).write_text(text)
    assert [p.relative_to(ckpt).as_posix() for p in model_files(ckpt)] == [
        "1_Pooling/config.json", "config.json", "model.safetensors"]
    before = content_hash(model_files(ckpt), tmp_path / "cache")
    (ckpt / "README.md").write_text("edited")  # says nothing about what it computes
    assert content_hash(model_files(ckpt), tmp_path / "cache") == before
    (ckpt / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    assert content_hash(model_files(ckpt), tmp_path / "cache") != before
