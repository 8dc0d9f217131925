from xlt.core.metrics import MetricKey, from_trainer_logs, metric_name, parse_metric_name, target_mean


def test_names_parse_back_into_split_language_metric():
    for split, lang, metric in [("validation", "de", "accuracy"), ("test", "target_mean", "accuracy"),
                                ("train", None, "loss"), ("test", "zh", "samples_per_second")]:
        assert parse_metric_name(metric_name(split, metric, lang)) == MetricKey(split, lang, metric)
    assert parse_metric_name("system/cpu") is None
    assert parse_metric_name("validation//accuracy") is None


def test_trainer_records_are_renamed():
    assert from_trainer_logs({"loss": 1.1, "grad_norm": 0.5, "learning_rate": 1e-5, "epoch": 0.5}) == {
        "train/loss": 1.1, "train/grad_norm": 0.5, "train/learning_rate": 1e-5, "train/epoch": 0.5}
    assert from_trainer_logs({"eval_de_accuracy": 0.4, "eval_de_loss": 1.0, "epoch": 1.0}) == {
        "validation/de/accuracy": 0.4, "validation/de/loss": 1.0}
    # Per-language speed is clutter: each language keeps its runtime only (summed per round in MLflow).
    assert from_trainer_logs({"test_zh_samples_per_second": 9.0, "test_zh_steps_per_second": 1.0,
                              "test_zh_runtime": 2.0}) == {"test/zh/runtime": 2.0}
    assert from_trainer_logs({"testlast_de_accuracy": 0.5}) == {"test_last/de/accuracy": 0.5}
    # Trainer's end-of-training average covers only the steps since a resume: dropped.
    assert from_trainer_logs({"train_loss": 0.9, "train_runtime": 3.0}) == {"train/runtime": 3.0}


def test_target_mean_leaves_out_the_training_language():
    assert target_mean({"en": 0.9, "de": 0.5, "fr": 0.7}, "en") == 0.6
    assert target_mean({"en": 0.9}, "en") is None
