"""Training speed when another process keeps a core busy, for each torch thread count.

    python benchmarks/contention.py                  # MNIST from ../shared, default configuration
    python benchmarks/contention.py --busy 2         # two busy processes
    python benchmarks/contention.py --threads 2 --wait-policy active passive   # both, side by side

For each thread count (1 .. the machine's cores) it trains the default ConditionalDCGAN
for --images images on an idle machine, then again while --busy processes spin on the
CPU (pure Python loops: one core each), and prints images/s and the slowdown. Each
measurement runs in a fresh subprocess so that torch's thread pool is set before first
use. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"

_MEASURE = """
import json, os, sys, time
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
import torch
torch.set_num_threads(int(sys.argv[1]))
from ganaug import ConditionalDCGAN, load_idx
X, y = load_idx(sys.argv[2])
X, y = X[:int(sys.argv[3])], y[:int(sys.argv[3])]
gan = ConditionalDCGAN(max_epochs=1, train_classifier=False, device="cpu", random_state=0, verbose=False).fit(X, y)
gan.set_params(max_epochs=1 + int(sys.argv[4]))
before, start = gan.n_steps_, time.perf_counter()
gan.fit(X, y, resume=True)
print(json.dumps({"images_per_s": (gan.n_steps_ - before) * gan.train_config_.batch_size
                  / (time.perf_counter() - start)}))
"""


def _spin(stop_at: float) -> None:
    x = 0
    while time.time() < stop_at:
        x += 1


def measure(threads: int, data: Path, n: int, epochs: int, busy: int, wait_policy: str | None = None) -> float:
    procs = [mp.Process(target=_spin, args=(time.time() + 3600,), daemon=True) for _ in range(busy)]
    for p in procs:
        p.start()
    try:
        out = subprocess.run([sys.executable, "-c", _MEASURE, str(threads), str(data), str(n), str(epochs)],
                             capture_output=True, text=True, check=True,
                             env={**os.environ, "OMP_NUM_THREADS": str(threads),
                                  **({"OMP_WAIT_POLICY": wait_policy} if wait_policy else {})})
    finally:
        for p in procs:
            p.terminate()
            p.join()
    return json.loads(out.stdout.strip().splitlines()[-1])["images_per_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_MNIST)
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--epochs", type=int, default=2, help="timed epochs after a warm-up epoch")
    p.add_argument("--busy", type=int, default=1, help="busy processes while contended")
    p.add_argument("--threads", type=int, nargs="*", default=None, help="default: 1 .. os.cpu_count()")
    p.add_argument("--wait-policy", choices=["active", "passive"], nargs="*", default=[None],
                   help="OMP_WAIT_POLICY of the measured process; several are measured side by side")
    args = p.parse_args()
    counts = args.threads or list(range(1, (os.cpu_count() or 1) + 1))
    rows = []
    for threads in counts:
        for policy in args.wait_policy:
            idle = measure(threads, args.data, args.n, args.epochs, 0, policy)
            busy = measure(threads, args.data, args.n, args.epochs, args.busy, policy)
            rows.append({"threads": threads, "wait_policy": policy or "unset", "idle_images_per_s": round(idle, 1),
                         "busy_images_per_s": round(busy, 1), "slowdown": round(idle / busy, 2)})
    print(json.dumps({"cpu_count": os.cpu_count(), "busy_processes": args.busy, "rows": rows}, indent=2))
    print(f"| torch threads | OMP_WAIT_POLICY | idle images/s | with {args.busy} busy process(es) | slowdown |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['threads']} | {r['wait_policy']} | {r['idle_images_per_s']:,.0f} | {r['busy_images_per_s']:,.0f} "
              f"| {r['slowdown']:.2f}x |")


if __name__ == "__main__":
    main()
