"""Peak memory and time of streaming 1,000,000 generated 28x28 images into an npz.

    python benchmarks/generate_1m.py                  # MNIST from ../shared; writes under /tmp
    python benchmarks/generate_1m.py --n 100000       # a smaller set

Trains a default ConditionalDCGAN for one epoch on 2,000 MNIST images (quality does not
matter here), saves it, then in a fresh process loads it and writes the set with
:func:`ganaug.export.export_samples` (format npz). Reports that process's peak resident
memory (``ru_maxrss``, which includes torch itself), its time and samples/s. The
issue's bound: under 1.2 GiB for 1,000,000 images.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

DEFAULT_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"

_EXPORT = """
import json, os, resource, sys, time
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
from ganaug import ConditionalDCGAN
from ganaug.export import export_samples
gan = ConditionalDCGAN.load(sys.argv[1], device="cpu")
n = int(sys.argv[3])
counts = {c: n // gan.n_classes_ for c in gan.classes_.tolist()}
start = time.perf_counter()
result = export_samples(gan, sys.argv[2], counts, format="npz", batch_size=int(sys.argv[4]))
seconds = time.perf_counter() - start
print(json.dumps({"images": result["total"], "seconds": round(seconds, 1),
                  "samples_per_s": round(result["total"] / seconds, 1),
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_MNIST)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--batch-size", type=int, default=512, help="images per batch (export_samples' default)")
    p.add_argument("--workdir", type=Path, default=None)
    args = p.parse_args()
    from ganaug import ConditionalDCGAN, load_idx

    X, y = load_idx(args.data)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="ganaug-1m-"))
    gan = ConditionalDCGAN(max_epochs=1, train_classifier=False, device="cpu", random_state=0, verbose=False)
    gan.fit(X[:2000], y[:2000]).save(work / "model", overwrite=True)
    out = subprocess.run([sys.executable, "-c", _EXPORT, str(work / "model"), str(work / "set"), str(args.n),
                          str(args.batch_size)], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["npz_bytes"] = (work / "set" / "samples.npz").stat().st_size
    print(json.dumps(result))


if __name__ == "__main__":
    main()
