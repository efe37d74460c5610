"""Training images/s and sampling images/s for 1 and N processes (torchrun, gloo or NCCL).

    python benchmarks/distributed.py                       # CPU: MNIST if ../shared has it, else digits
    python benchmarks/distributed.py --device cuda --nproc 1   # on a GPU: the torchrun path with world size 1

Every configuration runs the real command line (``ganaug train`` / ``ganaug generate``),
side by side in one run of this script, on the same data and settings:

* training: ``--epochs E``; the rate is that of the last epoch (log.jsonl's ``images_per_s``,
  global images: each step is the global batch), so start-up and the first epoch's warm-up
  are not counted; the steps and the seconds are reported with it;
* sampling: ``ganaug generate --format npz`` of ``--samples`` images, the rate the command
  reports (generation and writing, rank 0's clock from the first batch to the published set).

On the CPU each configuration is (processes x threads per process): 1x(all cores), 1x1,
Nx(cores / N); torchrun sets OMP_NUM_THREADS=1 per process unless told, so the script sets
it explicitly. The world-size-1 torchrun run is compared with the plain run: under torchrun
with one process ganaug takes the plain path, so the checkpoints' losses must be equal.
Results: benchmarks/results/distributed-<device>.json (one entry per run, appended).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from downstream import machine  # noqa: E402  (one description of the machine for every benchmark)

MNIST = HERE.parent.parent / "shared" / "data" / "mnist"


def _run(command: list[str], threads: int, nproc: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "NO_ALBUMENTATIONS_UPDATE": "1"}
    prefix = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] \
        if nproc else [sys.executable]
    done = subprocess.run([*prefix, "-m", "ganaug", *command], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done


def train(out: Path, data: str, args: argparse.Namespace, threads: int, nproc: int) -> dict:
    """One training configuration into ``out``; ``nproc`` 0 is the plain command, without torchrun."""
    started = time.perf_counter()
    _run(["train", data, "--out", str(out), "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
          "--device", args.device, "--monitor-every", "0", "--grid-every", "0", "--no-train-classifier", "--seed", "0",
          "--quiet"],
         threads, nproc)
    wall = time.perf_counter() - started
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    last = log[-1]
    steps = last["step"] - (log[-2]["step"] if len(log) > 1 else 0)
    return {"processes": max(nproc, 1), "threads_per_process": threads, "torchrun": nproc > 0,
            "train_images_per_s": last["images_per_s"], "last_epoch_steps": steps,
            "last_epoch_seconds": last["seconds"], "total_steps": last["step"], "wall_seconds": round(wall, 1),
            "run_dir": str(out)}


def generate(work: Path, run_dir: str, name: str, args: argparse.Namespace, threads: int, nproc: int) -> dict:
    out = work / f"{name}.samples"
    done = _run(["generate", run_dir, "--out", str(out), "--per-class", str(args.samples // 10), "--format", "npz",
                 "--batch-size", str(args.sample_batch), "--device", args.device, "--json"], threads, nproc)
    result = json.loads(done.stdout)
    return {"sample_images_per_s": result["images_per_s"], "samples": result["total"],
            "sample_seconds": result["seconds"]}


def _losses(run_dir: str) -> list[float]:
    from ganaug import ConditionalDCGAN

    return ConditionalDCGAN.load(Path(run_dir) / "checkpoint", device="cpu").history_["d_loss"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="DATA for ganaug train (default: MNIST if present, else digits)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--nproc", type=int, default=2, help="processes of the distributed configuration")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch")
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--sample-batch", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2,
                        help="rounds over the configurations, in turn (for the spread)")
    args = parser.parse_args()
    data = args.data or (str(MNIST) if (MNIST / "MNIST" / "raw").is_dir() else "digits")
    cores = os.cpu_count() or 1
    if args.device == "cpu":
        configs = [("1x%d" % cores, cores, 0), ("1x1", 1, 0), (f"{args.nproc}x{max(cores // args.nproc, 1)}",
                                                               max(cores // args.nproc, 1), args.nproc)]
        configs.append(("torchrun-1x%d" % cores, cores, 1))
    else:
        configs = [("plain", cores, 0), ("torchrun-1", cores, 1)]
        if args.nproc > 1:
            configs.append((f"torchrun-{args.nproc}", max(cores // args.nproc, 1), args.nproc))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for (name, threads, nproc), round_ in ((c, r) for r in range(args.repeats) for c in configs):
            row = {"config": name, **train(work / f"{name}-round{round_}", data, args, threads, nproc), "round": round_}
            row.update(generate(work, row["run_dir"], f"{name}-round{round_}", args, threads, nproc))
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "run_dir"}), flush=True)
        world1 = next(r for r in rows if r["torchrun"] and r["processes"] == 1)
        plain = next(r for r in rows if not r["torchrun"] and r["threads_per_process"] == world1["threads_per_process"])
        same = _losses(plain["run_dir"]) == _losses(world1["run_dir"])
    for row in rows:
        row.pop("run_dir")
    for row in rows:  # against the first configuration in the same round
        base = next(r for r in rows if r["round"] == row["round"])
        row["train_speedup_vs_first"] = round(row["train_images_per_s"] / base["train_images_per_s"], 2)
        row["sample_speedup_vs_first"] = round(row["sample_images_per_s"] / base["sample_images_per_s"], 2)
    entry = {"machine": machine(args.device), "data": data, "epochs": args.epochs, "batch_size": args.batch_size,
             "when": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": rows,
             "torchrun_world_1_losses_equal_plain": same}
    path = HERE / "results" / f"distributed-{args.device.split(':')[0]}.json"
    entries = json.loads(path.read_text()) if path.exists() else []
    path.write_text(json.dumps(entries + [entry], indent=2) + "\n")
    print(json.dumps({"torchrun_world_1_losses_equal_plain": same, "wrote": str(path)}))


if __name__ == "__main__":
    main()
