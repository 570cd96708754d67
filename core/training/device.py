"""The device a run trains on: what it has (bf16, TF32, memory), how PyTorch is set up for it, and
how several processes (torchrun, accelerate) are counted and torn down.

Example::

    setup = DeviceSetup.detect()   # DeviceSetup(device='cpu', bf16=False, ...)
    prepare_torch(seed=42, setup=setup)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.workspace import models


# -- devices -------------------------------------------------------------------------------
@dataclass
class DeviceSetup:
    device: str
    bf16: bool
    tf32: bool
    optim: str
    memory: str  # for people: what the accelerator has

    @classmethod
    def detect(cls) -> DeviceSetup:
        import torch
        device = models.pick_device()
        if device == "cuda":
            props = torch.cuda.get_device_properties(0)
            return cls("cuda", torch.cuda.is_bf16_supported(), props.major >= 8, "adamw_torch_fused",
                       f"{props.name}, {props.total_memory / 2**30:.0f} GB")
        return cls(device, device == "cpu" and cpu_has_bf16(), False, "adamw_torch", "")


def cpu_has_bf16() -> bool:
    """Native bfloat16 matrix units (Intel AMX, AVX512-BF16): only there does bf16 autocast
    speed training up; elsewhere it is emulated and slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def precision(setup: DeviceSetup) -> str:
    """The precision training really runs in, in words: bf16 here is autocast (the weights and
    AdamW stay float32), and the evaluations encode in float32."""
    return "bf16 autocast, evaluated in float32" if setup.bf16 else "float32"


# -- the pieces of a run -------------------------------------------------------------------
def world_size() -> int:
    """How many processes train together (torchrun and accelerate set ``WORLD_SIZE``)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def prepare_torch(seed: int, setup: DeviceSetup) -> None:
    """Seed PyTorch and allow TF32 matrix products where the device has them.

    Args:
        seed: the run's seed, so two runs of one config start from the same initial state.
        setup: the detected device.
    """
    import torch
    torch.manual_seed(seed)
    if setup.tf32:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def end_distributed() -> None:
    """Tear down the process group that torchrun or accelerate set up for the trainer, so the
    processes exit cleanly (and PyTorch does not warn of a leak); once per process, at its end."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
