"""The benchmarks' own arithmetic, checked against what torch counts."""
import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from conftest import REPO, SHARED, needs_shared

sys.path.insert(0, str(REPO / "benchmarks"))
from mfu import peak_tflops, train_flops  # noqa: E402


@pytest.mark.parametrize("frozen", [False, True])
def test_train_flops_match_torch_count(frozen):
    """The MFU numerator equals the matrix FLOPs torch counts for a real forward and backward."""
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=500, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=256, num_labels=3, attn_implementation="eager")
    model = BertForSequenceClassification(config)
    if frozen:
        model.bert.requires_grad_(False)
    lengths = [17, 96]
    with FlopCounterMode(display=False) as counter:
        for s in lengths:  # one sequence per batch: no padding to count
            ids = torch.randint(5, 500, (1, s))
            model(input_ids=ids, labels=torch.tensor([1])).loss.backward()
    counted = counter.get_total_flops()
    expected = train_flops(config, lengths, encoder_backward=not frozen)
    # What the formula leaves out (pooler and classifier, once per sequence) is under 1%.
    assert expected == pytest.approx(counted, rel=0.01)
    assert expected < counted


def test_peak_table_prefers_specific_names():
    assert peak_tflops("NVIDIA H100 80GB HBM3") == 989.4
    assert peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert peak_tflops("NVIDIA H200") == 989.4
    assert peak_tflops("Intel Xeon") is None


@pytest.mark.heavy
@pytest.mark.slow
@needs_shared
def test_gpu_benchmark_runs_its_smoke_case(tmp_path):
    """The GPU benchmark's whole path on a tiny model: kept working for when a GPU is lent."""
    import json
    import subprocess

    out = tmp_path / "results.json"
    result = subprocess.run([sys.executable, "benchmarks/bench_gpu.py", "--smoke", "--case", "fine_tune",
                             "--peak-tflops", "1", "--shared", str(SHARED), "--out", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    case = json.loads(out.read_text())["fine_tune"]
    for side in ("seed", "xlt"):
        r = case[side]
        tokens_per_sample = r["train_tokens_per_second"] / r["train_samples_per_second"]
        assert 10 < tokens_per_sample < 128  # real XNLI pairs, padding not counted
        assert 0 < r["mfu"] < 1
    # The seed pads every pair to 512: the GPU works far more than the useful FLOPs.
    assert case["seed"]["flops_utilisation_with_padding"] > 5 * case["seed"]["mfu"]
    assert "train_samples_per_second" in result.stdout and "ratio" in result.stdout
