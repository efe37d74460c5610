"""The quality target: the default ConditionalDCGAN on MNIST within 5 minutes of CPU training.

    python benchmarks/mnist_quality.py                 # 300 s of training, then the report
    python benchmarks/mnist_quality.py --budget 60     # a shorter run
    python benchmarks/mnist_quality.py --set ema=None --set loss=bce    # another configuration
    python benchmarks/mnist_quality.py --filter 0.9   # also measure filtered sampling

Data: the 10,000 MNIST images in ../shared/data/mnist, split in half (stratified, seed 0):
5,000 for training, 5,000 held out. Trains the default configuration for --budget
seconds (max_time), then measures it against the held-out half with
ganaug.metrics.evaluate_generator (the GAN's own domain classifier as feature space) and
prints the report, the targets (class fidelity >= 95%, Fréchet distance <= 5x its
real-vs-real floor, CAS within 3 points of the real-trained classifier) and whether each
is met. Writes the report folder to --out. With --filter, the same generator is measured
a second time with ``sample(..., filter=THRESHOLD)``; its class fidelity is then 100% by
construction (the filter and the judge are the same classifier), so read the Fréchet
distance and CAS of that run.
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import torch
from sklearn.model_selection import train_test_split

from ganaug import ConditionalDCGAN, load_idx
from ganaug.metrics import evaluate_generator, format_report
from ganaug.params import parse_settings
from ganaug.report import write_report

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=MNIST)
    p.add_argument("--budget", type=float, default=300.0, help="training seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, default=Path("runs/mnist_quality"))
    p.add_argument("--filter", type=float, default=None, metavar="THRESHOLD",
                   help="also evaluate sample(..., filter=THRESHOLD) from the same generator")
    p.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE",
                   help="override a ConditionalDCGAN parameter (a Python literal, e.g. ema=None, augment=None)")
    args = p.parse_args()
    overrides = parse_settings(args.set)

    X, y = load_idx(args.data)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, stratify=y, random_state=0)
    gan = ConditionalDCGAN(max_epochs=100_000, max_time=args.budget, device=args.device, random_state=args.seed,
                           **overrides)
    start = time.perf_counter()
    gan.fit(X_train, y_train)
    train_seconds = time.perf_counter() - start
    report = evaluate_generator(gan, X_test, y_test, train_X=X_train, train_y=y_train, random_state=args.seed)
    write_report(gan, X_test, y_test, args.out, report, train_X=X_train, train_y=y_train)
    device = torch.cuda.get_device_name(gan.device_) if gan.device_.type == "cuda" else gan.device_.type
    print(format_report(report))
    print(f"\ntrained {gan.n_epochs_} epochs ({gan.n_steps_} steps) in {train_seconds:.0f} s on {device} "
          f"(includes the domain classifier), params: {gan.get_params()}")
    print_targets(report)
    summary = {k: v for k, v in report.items() if not isinstance(v, dict)}
    print(json.dumps({"train_seconds": round(train_seconds, 1), "epochs": gan.n_epochs_, "device": device, **summary}))
    if args.filter is not None:
        try:
            filtered = evaluate_generator(gan, X_test, y_test, train_X=X_train, train_y=y_train,
                                          filter=args.filter, random_state=args.seed)
        except ValueError as err:  # too few confident samples for some class
            print(f"\nfilter={args.filter}: {err}")
            return
        print(f"\n--- the same generator, sample(..., filter={args.filter}) ---")
        print(format_report(filtered))
        print_targets(filtered)
        summary = {k: v for k, v in filtered.items() if not isinstance(v, dict)}
        acceptance = sum(filtered["acceptance_rate"].values()) / len(filtered["acceptance_rate"])
        print(json.dumps({"filter": args.filter, "acceptance_mean": round(acceptance, 3), **summary}))


def quality_targets(report: dict) -> dict[str, bool]:
    """Whether an evaluate_generator report meets each of the three targets."""
    return {
        "class fidelity >= 95%": bool(report["class_fidelity_mean"] >= 0.95),
        "Fréchet distance <= 5x floor": bool(report["fid_ratio"] <= 5),
        "CAS within 3 points of real": bool(report["cas"] >= report["cas_real_baseline"] - 0.03),
    }


def print_targets(report: dict) -> None:
    for name, met in quality_targets(report).items():
        print(f"{'MET ' if met else 'MISS'}  {name}")


if __name__ == "__main__":
    main()
