"""The devices a job may use: visible GPUs, and the name of the one a job runs on."""
from __future__ import annotations

import os
from typing import List


def visible_gpus() -> List[str]:
    """The GPUs jobs may use, as CUDA_VISIBLE_DEVICES entries (torch is asked only when unset)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip() and d.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def device_name() -> str:
    """The GPU this process trains on, or `cpu`."""
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
