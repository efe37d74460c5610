"""Training and sampling throughput of ganaug beside a minimal plain-PyTorch loop, in one run.

    python benchmarks/throughput.py                     # CPU (or --device cuda), MNIST from ../shared
    python benchmarks/throughput.py --quick             # fewer steps: a smoke test, not a measurement
    python benchmarks/throughput.py --out benchmarks/results/throughput-cpu.json

Measures, on one device, side by side:

* the machine's matrix-multiply rate (fp32; bf16 too where the device has it);
* training images/s of ganaug's ``classic`` preset and of its default configuration
  (``dcgan``, sized for 28x28), each beside a minimal plain-PyTorch loop of the same
  networks and batch (one D step, one G step, the same loss, Adam; no augmentation and no
  moving average, which ganaug adds), and of ganaug with augmentation and the average off
  (the same work as the plain loop);
* sampling samples/s (``ConditionalDCGAN.sample(..., output="tensor")``);
* the FLOPs of one training step (torch's FlopCounterMode), hence the achieved FLOP/s
  against the matmul rate.

Prints one JSON document (machine: CPU model and flags, torch version and threads,
device) and a table with the ratios. Timed sections follow an untimed warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from ganaug import ConditionalDCGAN, load_idx
from ganaug.data import as_image_data
from ganaug.gan import resolve_device
from ganaug.losses import get_loss
from ganaug.models import build_models
from ganaug.params import resolve

DEFAULT_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "fma")


def machine(device: torch.device) -> dict:
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device),
            "cpu": platform.processor() or platform.machine(), "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name"))
        flags = set(next(line for line in text.splitlines() if line.startswith("flags")).split(":", 1)[1].split())
        info["cpu_flags"] = [f for f in FLAGS if f in flags]
    except (OSError, StopIteration):
        pass
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(device: torch.device, dtype: torch.dtype, n: int, seconds: float) -> float:
    """FLOP/s of square (n x n) matrix products."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up
    _sync(device)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
        _sync(device)
    return 2 * n**3 * count / (time.perf_counter() - start)


def ganaug_rate(X: np.ndarray, y: np.ndarray, params: dict, steps: int, device: str) -> tuple[float, ConditionalDCGAN]:
    """Training images/s of ConditionalDCGAN.fit, after a one-epoch warm-up."""
    gan = ConditionalDCGAN(**params, max_epochs=1, train_classifier=False, device=device, random_state=0,
                           verbose=False).fit(X, y)
    batch = gan.train_config_.batch_size
    epochs = max(1, -(-steps // (len(X) // batch)))
    gan.set_params(max_epochs=1 + epochs)
    _sync(gan.device_)
    before, start = gan.n_steps_, time.perf_counter()
    gan.fit(X, y, resume=True)
    _sync(gan.device_)
    return (gan.n_steps_ - before) * batch / (time.perf_counter() - start), gan


def plain_rate(gan: ConditionalDCGAN, images: torch.Tensor, labels: torch.Tensor, steps: int, *,
               channels_last: bool = False, fused: bool | None = None) -> tuple[float, float]:
    """(images/s, FLOPs per step) of a minimal loop over networks like ``gan``'s, same batch and loss.

    ``channels_last`` and ``fused`` (Adam's fused kernel) are the candidate fast paths, measured here
    before ganaug adopts them."""
    config, device = gan.train_config_, gan.device_
    memory = torch.channels_last if channels_last else torch.contiguous_format
    generator, discriminator = (m.to(device, memory_format=memory) for m in build_models(gan.model_config_))
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr_g, betas=config.betas, fused=fused)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_d, betas=config.betas, fused=fused)
    loss, batch = get_loss(config.loss), config.batch_size
    images, labels = images.to(device).contiguous(memory_format=memory), labels.to(device)

    def step(i: int) -> None:
        idx = torch.randint(0, len(images), (batch,), device=device)
        real, y = images[idx], labels[idx]
        fake = generator(torch.randn(batch, generator.config.latent_dim, device=device), y)
        loss_d = loss.d_loss(discriminator(real, y), discriminator(fake.detach(), y))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = loss.g_loss(discriminator(fake, y))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

    for i in range(3):
        step(i)
    with FlopCounterMode(display=False) as counter:
        step(0)
    _sync(device)
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    _sync(device)
    return steps * batch / (time.perf_counter() - start), float(counter.get_total_flops())


def sampling_rate(gan: ConditionalDCGAN, n: int, batch_size: int) -> float:
    gan.sample(min(n, batch_size), random_state=0, output="tensor", batch_size=batch_size)  # warm-up
    _sync(gan.device_)
    start = time.perf_counter()
    gan.sample(n, random_state=0, output="tensor", batch_size=batch_size)
    _sync(gan.device_)
    return n / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_MNIST)
    p.add_argument("--n", type=int, default=5000, help="MNIST images to train on")
    p.add_argument("--images", type=int, default=10000, help="timed training images per measurement")
    p.add_argument("--samples", type=int, default=20000, help="images generated for the sampling rate")
    p.add_argument("--sample-batch", type=int, default=2048)
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true", help="a few steps only: checks that it runs")
    p.add_argument("--out", type=Path, help="also write the JSON here")
    args = p.parse_args()
    if args.quick:
        args.n, args.images, args.samples = 1024, 512, 1024
    X, y = load_idx(args.data)
    X, y = X[: args.n], y[: args.n]
    device = resolve_device(args.device)
    seconds = 0.3 if args.quick else 3.0
    result: dict = {"machine": machine(device), "settings": vars(args) | {"data": str(args.data), "out": None},
                    "matmul_flops": {"fp32": matmul_rate(device, torch.float32, 1024 if args.quick else 2048, seconds)}}
    if device.type == "cuda" or "avx512_bf16" in result["machine"].get("cpu_flags", []):
        result["matmul_flops"]["bf16"] = matmul_rate(device, torch.bfloat16, 1024 if args.quick else 2048, seconds)
    configs = {"classic": {"arch": "classic"}, "default": {}}
    rows = []
    for name, params in configs.items():
        batch = int(resolve(ConditionalDCGAN(**params).get_params(), "batch_size"))
        steps = max(2, args.images // batch)
        full, gan = ganaug_rate(X, y, params, steps, args.device)
        same_work, _ = ganaug_rate(X, y, {**params, "augment": None, "ema": None}, steps, args.device)
        prepared = as_image_data(X, y)
        plain, flops = plain_rate(gan, prepared.images, prepared.labels, steps)
        samples = sampling_rate(gan, args.samples, args.sample_batch)
        variants = {"channels_last": plain_rate(gan, prepared.images, prepared.labels, steps, channels_last=True)[0],
                    "fused_adam": plain_rate(gan, prepared.images, prepared.labels, steps, fused=True)[0]}
        achieved = flops / batch * plain
        rows.append({
            "config": name, "arch": gan.arch, "batch_size": batch, "ganaug_images_per_s": round(full, 1),
            "ganaug_same_work_images_per_s": round(same_work, 1), "plain_images_per_s": round(plain, 1),
            "ratio_ganaug_to_plain": round(full / plain, 3), "ratio_same_work_to_plain": round(same_work / plain, 3),
            "sampling_per_s": round(samples, 1), "flops_per_step": flops,
            "plain_achieved_flops": achieved,
            "plain_variants_images_per_s": {k: round(v, 1) for k, v in variants.items()},
            "ratio_variants_to_plain": {k: round(v / plain, 3) for k, v in variants.items()}, "ratio_achieved_to_matmul": round(achieved / result["matmul_flops"]["fp32"], 4),
        })
    result["rows"] = rows
    text = json.dumps(result, indent=2, default=str)
    print(text)
    print(f"\nmatmul fp32: {result['matmul_flops']['fp32'] / 1e9:.1f} GFLOP/s on {result['machine']['cpu']} "
          f"({result['machine']['threads']} threads, {result['machine']['device']})")
    print("| config | batch | ganaug img/s | ganaug, no augment/EMA | plain loop | ganaug / plain | same work / plain "
          "| samples/s | achieved / matmul | plain + channels_last | plain + fused Adam |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['config']} ({r['arch']}) | {r['batch_size']} | {r['ganaug_images_per_s']:,.0f} | "
              f"{r['ganaug_same_work_images_per_s']:,.0f} | {r['plain_images_per_s']:,.0f} | "
              f"{r['ratio_ganaug_to_plain']:.2f} | {r['ratio_same_work_to_plain']:.2f} | {r['sampling_per_s']:,.0f} | "
              f"{r['ratio_achieved_to_matmul']:.1%} | {r['ratio_variants_to_plain']['channels_last']:.2f}x | "
              f"{r['ratio_variants_to_plain']['fused_adam']:.2f}x |")
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
