"""Model FLOPs of training a BERT encoder, and the share of a GPU's peak they reach (MFU).

Counted the way PaLM's appendix B counts them: a weight matrix costs 2 FLOPs per token
and parameter forward, twice that backward; attention's two S x S products cost
4 * S^2 * hidden per layer forward. Useful work only: padding tokens count nothing,
embeddings are lookups, and the pooler and classifier (once per sequence) are left out.
"""
from typing import Iterable, Optional

# Dense bf16 tensor-core peak in TFLOP/s, by a substring of torch.cuda.get_device_name();
# the first match wins, so the specific names come first.
PEAK_BF16_TFLOPS = (
    ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.4), ("GH200", 989.4), ("H200", 989.4),
    ("A100", 312.0), ("L40S", 362.1), ("L4", 121.0), ("A10", 125.0),
)


def peak_tflops(device_name: str) -> Optional[float]:
    return next((peak for key, peak in PEAK_BF16_TFLOPS if key in device_name), None)


def matmul_params(config) -> int:
    """Weights multiplied once per token: each layer's Q, K, V, output and two MLP matrices."""
    h, i = config.hidden_size, config.intermediate_size
    return config.num_hidden_layers * (4 * h * h + 2 * h * i)


def train_flops(config, lengths: Iterable[int], encoder_backward: bool = True) -> float:
    """FLOPs of one forward and backward pass over sequences of these (unpadded) lengths.

    With a frozen encoder (`encoder_backward=False`) only the forward pass counts.
    """
    n, layers, h = matmul_params(config), config.num_hidden_layers, config.hidden_size
    forward = sum(2 * n * s + 4 * layers * h * s * s for s in lengths)
    return forward * (3 if encoder_backward else 1)
