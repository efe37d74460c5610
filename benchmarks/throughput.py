"""Training and sampling throughput of ganaug beside a minimal plain-PyTorch loop, in one run.

    python benchmarks/throughput.py                     # CPU (or --device cuda), MNIST from ../shared
    python benchmarks/throughput.py --quick             # fewer steps: a smoke test, not a measurement
    python benchmarks/throughput.py --out benchmarks/results/throughput-cpu.json
    python benchmarks/throughput.py --compile --time-to-quality   # also torch.compile and time to quality

Measures, on one device, side by side:

* the machine's matrix-multiply rate (fp32; bf16 too where the device has it);
* training images/s of ganaug's ``classic`` preset and of its default configuration
  (``dcgan``, sized for 28x28), each beside a minimal plain-PyTorch loop of the same
  networks and batch (one D step, one G step, the same loss, Adam; no augmentation and no
  moving average, which ganaug adds), and of ganaug with augmentation and the average off
  (the same work as the plain loop);
* bf16 (ganaug ``precision="bf16"`` and the plain loop under autocast) where the device
  computes in bf16 natively, or with ``--bf16``; ``compile="default"`` with ``--compile``;
  channels_last and fused Adam on the plain loop;
* sampling samples/s (``ConditionalDCGAN.sample(..., output="tensor")``) at ganaug's
  default batch and at ``--sample-batches``;
* with ``--time-to-quality``: the training seconds until the default generator first
  meets the three targets of benchmarks/mnist_quality.py (on the full 10,000 images split
  in half, as there);
* the FLOPs of one training step (torch's FlopCounterMode), hence the achieved FLOP/s
  against the matmul rate.

Prints one JSON document (machine: CPU model and flags, torch version and threads,
device) and a table with the ratios. Timed sections follow an untimed warm-up.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from ganaug import ConditionalDCGAN, load_idx
from ganaug.data import as_image_data
from ganaug.fastpath import native_bf16, resolve_precision, sampling_batch_size
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
               channels_last: bool = False, fused: bool | None = None, bf16: bool = False) -> tuple[float, float]:
    """(images/s, FLOPs per step) of a minimal loop over networks like ``gan``'s, same batch and loss.

    ``channels_last``, ``fused`` (Adam's fused kernel) and ``bf16`` (autocast of the forward
    passes) are the candidate fast paths, measured here beside the fp32 loop."""
    config, device = gan.train_config_, gan.device_
    memory = torch.channels_last if channels_last else torch.contiguous_format
    generator, discriminator = (m.to(device, memory_format=memory) for m in build_models(gan.model_config_))
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr_g, betas=config.betas, fused=fused)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_d, betas=config.betas, fused=fused)
    loss, batch = get_loss(config.loss), config.batch_size
    images, labels = images.to(device).contiguous(memory_format=memory), labels.to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    def step(i: int) -> None:
        idx = torch.randint(0, len(images), (batch,), device=device)
        real, y = images[idx], labels[idx]
        with autocast:
            fake = generator(torch.randn(batch, generator.config.latent_dim, device=device), y)
            d_real, d_fake = discriminator(real, y), discriminator(fake.detach(), y)
        loss_d = loss.d_loss(d_real.float(), d_fake.float())
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        with autocast:
            d_fake = discriminator(fake, y)
        loss_g = loss.g_loss(d_fake.float())
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


def sampling_rate(gan: ConditionalDCGAN, n: int, batch_size: int | None) -> float:
    """samples/s of ``gan.sample(n, output="tensor")``; ``batch_size`` None is ganaug's default."""
    warm_up = min(n, batch_size or sampling_batch_size(gan.device_))
    gan.sample(warm_up, random_state=0, output="tensor", batch_size=batch_size)
    _sync(gan.device_)
    start = time.perf_counter()
    gan.sample(n, random_state=0, output="tensor", batch_size=batch_size)
    _sync(gan.device_)
    return n / (time.perf_counter() - start)


def measure(name: str, params: dict, X: np.ndarray, y: np.ndarray, args: argparse.Namespace, bf16: bool) -> dict:
    """One row: ganaug and its variants beside the plain loop and its variants, one config."""
    batch = int(resolve(ConditionalDCGAN(**params).get_params(), "batch_size"))
    steps = max(2, args.images // batch)
    full, gan = ganaug_rate(X, y, params, steps, args.device)

    def ganaug_variant(**changes: Any) -> float:
        return ganaug_rate(X, y, {**params, **changes}, steps, args.device)[0]

    ganaug = {"same_work": ganaug_variant(augment=None, ema=None)}
    if bf16:
        ganaug["bf16"] = ganaug_variant(precision="bf16")
    if args.compile:
        ganaug["compile"] = ganaug_variant(compile="default")
    prepared = as_image_data(X, y)
    plain_variant = functools.partial(plain_rate, gan, prepared.images, prepared.labels, steps)
    plain, flops = plain_variant()
    variants = {"channels_last": plain_variant(channels_last=True)[0], "fused_adam": plain_variant(fused=True)[0]}
    if bf16:
        variants["bf16"] = plain_variant(bf16=True)[0]
        variants["bf16_channels_last"] = plain_variant(bf16=True, channels_last=True)[0]
    sampling = {"default_batch": sampling_rate(gan, args.samples, args.sample_batch)}
    for extra in args.sample_batches:
        sampling[f"batch_{extra}"] = sampling_rate(gan, args.samples, extra)
    achieved = flops / batch * plain
    return {
        "config": name, "arch": gan.arch, "batch_size": batch, "precision": resolve_precision(gan.precision, gan.device_),
        "ganaug_images_per_s": round(full, 1), "plain_images_per_s": round(plain, 1),
        "ratio_ganaug_to_plain": round(full / plain, 3),
        "ganaug_variants_images_per_s": {k: round(v, 1) for k, v in ganaug.items()},
        "ratio_ganaug_variants_to_plain": {k: round(v / plain, 3) for k, v in ganaug.items()},
        "plain_variants_images_per_s": {k: round(v, 1) for k, v in variants.items()},
        "ratio_plain_variants_to_plain": {k: round(v / plain, 3) for k, v in variants.items()},
        "sampling_per_s": {k: round(v, 1) for k, v in sampling.items()},
        "flops_per_step": flops, "plain_achieved_flops": achieved,
        "ratio_achieved_to_matmul": round(achieved / args.matmul_fp32, 4),
    }


def time_to_quality(X: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> dict:
    """Training seconds until the default generator first meets the three 5-minute MNIST targets.

    Every ``--check-every`` epochs the epoch callback stops the clock and measures the
    generator as benchmarks/mnist_quality.py does (held-out half, evaluate_generator); the
    run stops at the first check that meets all three, or after ``--quality-budget`` s."""
    from mnist_quality import quality_targets
    from sklearn.model_selection import train_test_split

    from ganaug.metrics import evaluate_generator

    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, stratify=y, random_state=0)
    checks: list[dict] = []
    clock = {"training": 0.0, "since": time.perf_counter()}

    def check(gan: ConditionalDCGAN, state) -> bool:
        clock["training"] += time.perf_counter() - clock["since"]
        if state.epoch % args.check_every == 0 or clock["training"] >= args.quality_budget:
            report = evaluate_generator(gan, X_test, y_test, train_X=X_train, train_y=y_train, random_state=0)
            met = quality_targets(report)
            checks.append({"epoch": state.epoch, "step": state.step, "training_s": round(clock["training"], 1),
                           "fidelity": round(report["class_fidelity_mean"], 4), "fid_ratio": round(report["fid_ratio"], 2),
                           "cas": round(report["cas"], 4), "cas_real": round(report["cas_real_baseline"], 4),
                           "met": met})
            print(json.dumps(checks[-1]), flush=True)
            if all(met.values()):
                return True
        clock["since"] = time.perf_counter()
        return clock["training"] >= args.quality_budget

    gan = ConditionalDCGAN(max_epochs=100_000, device=args.device, random_state=0, verbose=False)
    start = time.perf_counter()
    gan.fit(X_train, y_train, callback=check)
    met = [c for c in checks if all(c["met"].values())]
    return {"seconds_to_targets": met[0]["training_s"] if met else None, "steps": met[0]["step"] if met else None,
            "budget_s": args.quality_budget, "check_every_epochs": args.check_every, "checks": checks,
            "wall_s_with_checks": round(time.perf_counter() - start, 1),
            "domain_classifier_s_included": True}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_MNIST)
    p.add_argument("--n", type=int, default=5000, help="MNIST images to train on")
    p.add_argument("--images", type=int, default=10000, help="timed training images per measurement")
    p.add_argument("--samples", type=int, default=20000, help="images generated for the sampling rate")
    p.add_argument("--sample-batch", type=int, default=None, help="sampling batch (default: ganaug's for the device)")
    p.add_argument("--sample-batches", type=int, nargs="*", default=[2048], help="sampling batches also measured")
    p.add_argument("--device", default="auto")
    p.add_argument("--bf16", action="store_true", help="also measure bf16 where the device only emulates it")
    p.add_argument("--compile", action="store_true", help="also measure compile='default' (20-25 s per config)")
    p.add_argument("--time-to-quality", action="store_true", help="also measure the time to the MNIST targets")
    p.add_argument("--quality-budget", type=float, default=300.0, help="training seconds before giving up")
    p.add_argument("--check-every", type=int, default=10, help="epochs between two quality checks")
    p.add_argument("--quick", action="store_true", help="a few steps only: checks that it runs")
    p.add_argument("--out", type=Path, help="also write the JSON here")
    args = p.parse_args()
    if args.quick:
        args.n, args.images, args.samples = 1024, 512, 1024
    X, y = load_idx(args.data)
    device = resolve_device(args.device)
    seconds = 0.3 if args.quick else 3.0
    bf16 = native_bf16(device) or args.bf16
    result: dict = {"machine": machine(device) | {"native_bf16": native_bf16(device)},
                    "settings": vars(args) | {"data": str(args.data), "out": None},
                    "matmul_flops": {"fp32": matmul_rate(device, torch.float32, 1024 if args.quick else 2048, seconds)}}
    if bf16:
        result["matmul_flops"]["bf16"] = matmul_rate(device, torch.bfloat16, 1024 if args.quick else 2048, seconds)
    args.matmul_fp32 = result["matmul_flops"]["fp32"]
    configs = {"classic": {"arch": "classic"}, "default": {}}
    result["rows"] = [measure(name, params, X[: args.n], y[: args.n], args, bf16) for name, params in configs.items()]
    if args.time_to_quality:
        result["time_to_quality"] = time_to_quality(X, y, args)
    text = json.dumps(result, indent=2, default=str)
    print(text)
    print_table(result)
    if args.out:
        args.out.write_text(text + "\n")


def print_table(result: dict) -> None:
    m = result["machine"]
    print(f"\nmatmul fp32: {result['matmul_flops']['fp32'] / 1e9:.1f} GFLOP/s on {m['cpu']} "
          f"({m['threads']} threads, {m['device']}{', ' + m['gpu'] if 'gpu' in m else ''})")
    print("| config | batch | precision | ganaug img/s | plain fp32 loop | ganaug / plain | achieved / matmul "
          "| ganaug variants / plain | plain variants / plain | samples/s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in result["rows"]:
        ganaug = ", ".join(f"{k} {v:.2f}x" for k, v in r["ratio_ganaug_variants_to_plain"].items())
        plain = ", ".join(f"{k} {v:.2f}x" for k, v in r["ratio_plain_variants_to_plain"].items())
        samples = ", ".join(f"{k} {v:,.0f}" for k, v in r["sampling_per_s"].items())
        print(f"| {r['config']} ({r['arch']}) | {r['batch_size']} | {r['precision']} | {r['ganaug_images_per_s']:,.0f} "
              f"| {r['plain_images_per_s']:,.0f} | {r['ratio_ganaug_to_plain']:.2f} | {r['ratio_achieved_to_matmul']:.1%} "
              f"| {ganaug} | {plain} | {samples} |")
    quality = result.get("time_to_quality")
    if quality:
        print(f"\ntime to the three MNIST targets: {quality['seconds_to_targets']} s of training "
              f"({quality['steps']} steps; budget {quality['budget_s']} s, checked every {quality['check_every_epochs']} "
              "epochs)")


if __name__ == "__main__":
    main()
