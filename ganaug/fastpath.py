"""Which of the hardware's faster paths training and sampling take, per device.

Each choice was measured (``benchmarks/throughput.py``, docs/measurements.md) and is on
only where it helped or where the measurement could not be made and the vendor's
guidance is unambiguous (marked "CUDA" below, measured by ``benchmarks/gpu.sh`` when a
GPU is lent):

* ``precision``: bf16 autocast of the forward passes where the hardware computes in bf16
  (CUDA with bf16 support; CPUs with AVX-512 BF16 or AMX). On a CPU without them bf16 is
  emulated: the default DCGAN trained 10x slower on a 2-core AVX2 EPYC
  (``benchmarks/throughput.py --quick --bf16``), so ``"auto"`` stays in fp32 there. fp32 on
  the CPU is bit-reproducible for a fixed seed.
* ``channels_last`` (CUDA): NHWC batches, which the tensor-core convolutions prefer. On the
  CPU it measured 1.00x (classic) and 1.06x (dcgan) in fp32, within the 8% spread between
  runs: off, so that fp32 results stay as they were.
* ``fused`` Adam (CUDA): one kernel per optimiser step. CPU: 1.03x / 1.05x, off.
* ``device_rng`` (CUDA): permutations and latent noise drawn on the device, not copied over
  from the host every step. The CPU draws on the CPU anyway.
* ``compile``: ``torch.compile`` of both networks for training, an opt-in. On the CPU
  above it cost 20-25 s to compile and then trained at 0.83x of eager (dcgan and classic);
  ``"reduce-overhead"`` adds CUDA graphs on CUDA.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch

from .params import PARAMETERS

__all__ = ["COMPILE_MODES", "PRECISIONS", "FastPath", "fast_path", "fused_adam", "native_bf16", "resolve_precision",
           "sampling_batch_size"]

PRECISIONS = PARAMETERS["precision"].choices
COMPILE_MODES = PARAMETERS["compile"].choices


@cache
def _cpu_has_bf16() -> bool:
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(check()) for check in checks if check is not None)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bf16 natively (not emulated, which is slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return _cpu_has_bf16()
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"fp32"`` or ``"bf16"``: what ``precision`` (one of :data:`PRECISIONS`) means on ``device``.

    ``"auto"`` is bf16 where the device computes in it natively, else fp32. An explicit
    ``"bf16"`` is honoured everywhere, with a warning where it is emulated.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}.")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision == "bf16" and not native_bf16(device):
        warnings.warn(
            f"precision='bf16' on {device}, which has no native bf16: it is emulated and slower than fp32 "
            "(10x for the default model on an AVX2 CPU). Use precision='auto' or 'fp32'.",
            RuntimeWarning, stacklevel=3,
        )
    return precision


@dataclass(frozen=True)
class FastPath:
    """The fast paths one training run or sampling call takes."""

    device: torch.device
    precision: str = "fp32"  # "fp32" or "bf16", resolved
    channels_last: bool = False
    fused: bool = False
    device_rng: bool = False
    compile: str = "off"

    def autocast(self) -> Any:
        """Context for forward passes: bf16 autocast, or nothing in fp32."""
        if self.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def batch(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` (N, C, H, W) in the memory format the networks get."""
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    def compiled(self, module: torch.nn.Module) -> Any:
        """``module`` itself, or a compiled view of it that shares its parameters (the
        module, and so the checkpoint, stays uncompiled)."""
        if self.compile == "off":
            return module
        return torch.compile(module, mode=self.compile, dynamic=False)


def fork_rng_devices(device: torch.device) -> dict[str, Any]:
    """The arguments of ``torch.random.fork_rng`` that fork the RNG of work on ``device`` too."""
    if device.type == "cuda":
        return {"devices": [device.index or 0], "device_type": "cuda"}
    if device.type == "mps":
        return {"devices": [], "device_type": "mps"}
    return {"devices": []}


def fused_adam(device: torch.device) -> bool:
    """Whether Adam takes its fused kernel on ``device``."""
    return device.type == "cuda"


def sampling_batch_size(device: torch.device) -> int:
    """Images per forward pass when sampling: 512 fits the CPU's caches (2048 ran at half the
    rate on the 2-core EPYC: docs/measurements.md); a GPU needs large batches to be busy."""
    return 8192 if device.type == "cuda" else 512


def fast_path(device: torch.device, precision: str = "auto", compile: str = "off") -> FastPath:
    """The :class:`FastPath` for ``device``.

    >>> fast_path(torch.device("cpu"), "fp32")
    FastPath(device=device(type='cpu'), precision='fp32', channels_last=False, fused=False, device_rng=False, compile='off')
    """
    if compile not in COMPILE_MODES:
        raise ValueError(f"compile must be one of {COMPILE_MODES}, got {compile!r}.")
    cuda = device.type == "cuda"
    return FastPath(device=device, precision=resolve_precision(precision, device), channels_last=cuda,
                    fused=fused_adam(device), device_rng=cuda, compile=compile)
