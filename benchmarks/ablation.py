"""Ablation of the training options, to choose ganaug's defaults by measurement.

    python benchmarks/ablation.py                       # all datasets, configs, 3 seeds
    python benchmarks/ablation.py --datasets digits --seeds 1 --configs "previous default,kernel 4 + bce"

Datasets (held-out real images for every metric):
* digits:   scikit-learn's 8x8 digits, 60% for training (1,078), 40% held out;
* mnist100: 100 images per class from the 5,000-image training half of the MNIST
            test set in ../shared/data/mnist (stratified split, seed 0), the other
            5,000 images held out;
* mnist500: the whole 5,000-image training half (446-568 per class; the MNIST copy
            here holds 10,000 images, so 1,000 per class would leave nothing held out).
Each run trains for a fixed number of epochs per dataset (--epochs-digits,
--epochs-mnist100, --epochs-mnist500: 640, 600 and 624 steps at batch 64, twice as many
at batch 32), so that runs compare at equal images seen even when other work shares the
machine; the wall time (domain classifier included) is reported beside. Then ganaug.metrics.evaluate_generator
measures each model against up to 300 held-out images per class. The "+filter" rows
re-evaluate the default configuration's models with sample(filter=0.9). Writes JSON lines to --out
(an interrupted run resumes: finished runs are skipped) and prints a table of
mean ± sd over seeds.
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
from sklearn.model_selection import train_test_split

from ganaug import ConditionalDCGAN, load_digits, load_idx
from ganaug.metrics import evaluate_generator

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"

# Each config states every option it relies on, so that the table stays valid when the
# defaults change. "previous default" is the default before this table (5x5 kernels with
# the stride-1 block, width 64, BCE, no moving average). Rows without "- dropout" keep
# the discriminator's dropout 0.3 of the classic design, rows without "betas 0/0.9" Adam
# betas (0.5, 0.999), rows without "batch 32" batch 64, rows without "lr" Adam 2e-4 (G) /
# 4e-4 (D). The default now is one of the two "+ lr 6e-4/1.2e-3" rows: hinge + spectral
# norm with the moving average, no dropout, betas (0, 0.9), batch 32, Adam 6e-4 / 1.2e-3,
# kernel 5 and width 64 on images under 16 pixels (digits), kernel 4 and width 32 from 16
# pixels up (MNIST): see default_config_name.
DEFAULT = {"arch": "dcgan", "width": 32, "kernel_size": None, "embed_dim": 10, "augment": "translation",
           "lr_g": 6e-4, "lr_d": 1.2e-3, "betas": (0.0, 0.9), "batch_size": 32, "loss": "hinge",
           "spectral_norm": True, "dropout": 0.0, "ema": 0.999}
LR_2X = {**DEFAULT, "lr_g": 4e-4, "lr_d": 8e-4}
LR_1X = {**DEFAULT, "lr_g": 2e-4, "lr_d": 4e-4}
BATCH_64 = {**LR_1X, "batch_size": 64}
BETAS_05 = {**BATCH_64, "betas": (0.5, 0.999)}
DROPOUT = {**BETAS_05, "dropout": 0.3}
NO_EMA = {**DROPOUT, "ema": None}
CONFIGS = {
    "previous default": {**NO_EMA, "kernel_size": 5, "width": 64, "loss": "bce", "spectral_norm": False},
    "kernel 4 + bce": {**NO_EMA, "kernel_size": 4, "loss": "bce", "spectral_norm": False},
    "kernel 4 + hinge + sn": {**NO_EMA, "kernel_size": 4},
    "kernel 5 + hinge + sn": {**NO_EMA, "kernel_size": 5},
    "hinge + sn + cutout": {**NO_EMA, "augment": "translation,cutout"},
    "hinge + sn + ema 0.999": DROPOUT,
    "hinge + sn + ema 0.999 + width 64": {**DROPOUT, "width": 64},
    "hinge + sn + ema 0.999 - dropout": BETAS_05,
    "hinge + sn + ema 0.999 + width 64 - dropout": {**BETAS_05, "width": 64},
    "hinge + sn + ema 0.999 - dropout + betas 0/0.9": BATCH_64,
    "hinge + sn + ema 0.999 + width 64 - dropout + betas 0/0.9": {**BATCH_64, "width": 64},
    "hinge + sn + ema 0.999 - dropout + betas 0/0.9 + batch 32": LR_1X,
    "hinge + sn + ema 0.999 + width 64 - dropout + betas 0/0.9 + batch 32": {**LR_1X, "width": 64},
    "hinge + sn + ema 0.999 - dropout + betas 0/0.9 + batch 32 + lr 4e-4/8e-4": LR_2X,
    "hinge + sn + ema 0.999 + width 64 - dropout + betas 0/0.9 + batch 32 + lr 4e-4/8e-4": {**LR_2X, "width": 64},
    "hinge + sn + ema 0.999 - dropout + betas 0/0.9 + batch 32 + lr 6e-4/1.2e-3": DEFAULT,
    "hinge + sn + ema 0.999 + width 64 - dropout + betas 0/0.9 + batch 32 + lr 6e-4/1.2e-3": {**DEFAULT, "width": 64},
}


def default_config_name(image_size: int) -> str:
    """The row that equals the default on images of this size (also evaluated with the filter)."""
    return ("hinge + sn + ema 0.999 + width 64 - dropout + betas 0/0.9 + batch 32 + lr 6e-4/1.2e-3" if image_size < 16
            else "hinge + sn + ema 0.999 - dropout + betas 0/0.9 + batch 32 + lr 6e-4/1.2e-3")


def datasets(names, mnist_dir):
    out = {}
    if "digits" in names:
        X, y = load_digits()
        out["digits"] = train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)
    if any(n.startswith("mnist") for n in names):
        X, y = load_idx(mnist_dir)
        X_pool, X_test, y_pool, y_test = train_test_split(X, y, test_size=0.5, stratify=y, random_state=0)
        if "mnist100" in names:
            rng = np.random.default_rng(0)
            keep = np.concatenate([rng.choice(np.flatnonzero(y_pool == c), 100, replace=False) for c in range(10)])
            out["mnist100"] = (X_pool[keep], X_test, y_pool[keep], y_test)
        if "mnist500" in names:
            out["mnist500"] = (X_pool, X_test, y_pool, y_test)
    return out


def summarise(rows, key):
    values = np.asarray([r[key] for r in rows if r.get(key) is not None], dtype=float)
    return f"{values.mean():.3g} ± {values.std():.2g}" if len(values) else "–"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="digits,mnist100,mnist500")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs-digits", type=int, default=40)
    p.add_argument("--epochs-mnist100", type=int, default=40)
    p.add_argument("--epochs-mnist500", type=int, default=8)
    p.add_argument("--filter", type=float, default=0.9)
    p.add_argument("--data", type=Path, default=MNIST)
    p.add_argument("--out", type=Path, default=Path("runs/ablation.jsonl"))
    args = p.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    configs = args.configs.split(",")
    # Rows already in --out are kept and their runs skipped, so an interrupted ablation resumes.
    results = [json.loads(line) for line in args.out.read_text().splitlines()] if args.out.exists() else []
    done = {(r["dataset"], r["config"], r["seed"]) for r in results}
    results = [r for r in results if "failed" not in r]
    sizes = {}  # dataset -> image side, which decides its default config
    with args.out.open("a") as log:
        for ds_name, (X_tr, X_te, y_tr, y_te) in datasets(args.datasets.split(","), args.data).items():
            sizes[ds_name] = min(X_tr.shape[1:3])
            epochs = getattr(args, f"epochs_{ds_name}")
            for cfg_name in configs:
                for seed in range(args.seeds):
                    if (ds_name, cfg_name, seed) in done:
                        continue
                    start = time.perf_counter()
                    gan = ConditionalDCGAN(max_epochs=epochs, random_state=seed, verbose=False,
                                           **CONFIGS[cfg_name]).fit(X_tr, y_tr)
                    seconds = time.perf_counter() - start
                    runs = [(cfg_name, None)] + ([(cfg_name + " +filter", args.filter)]
                                                     if cfg_name == default_config_name(min(X_tr.shape[1:3])) else [])
                    for row_name, threshold in runs:
                        try:
                            report = evaluate_generator(gan, X_te, y_te, train_X=X_tr, train_y=y_tr, n_per_class=300,
                                                        filter=threshold, random_state=seed)
                        except ValueError as exc:  # the filter found too few confident samples of a class
                            print(f"{ds_name:9} {row_name:40} seed={seed} failed: {exc}", flush=True)
                            log.write(json.dumps({"dataset": ds_name, "config": row_name, "seed": seed,
                                                  "failed": str(exc)}) + "\n")
                            continue
                        row = {"dataset": ds_name, "config": row_name, "seed": seed, "train_seconds": round(seconds, 1),
                               "epochs": gan.n_epochs_, **{k: v for k, v in report.items() if not isinstance(v, dict)},
                               "near_copy_fraction": report["memorisation"]["near_copy_fraction"],
                               "acceptance": (float(np.mean(list(report["acceptance_rate"].values())))
                                              if threshold else None)}
                        log.write(json.dumps(row) + "\n")
                        log.flush()
                        results.append(row)
                        print(f"{ds_name:9} {row_name:40} seed={seed} fid={row['fid']:.1f}/{row['fid_floor']:.1f} "
                              f"fidelity={row['class_fidelity_mean']:.3f} P={row['precision']:.2f} "
                              f"R={row['recall']:.2f} C={row['coverage']:.2f} CAS={row['cas']:.3f} "
                              f"t={seconds:.0f}s", flush=True)
    keys = ["class_fidelity_mean", "fid_ratio", "precision", "recall", "density", "coverage", "cas", "acceptance",
            "train_seconds"]
    print("\n| dataset | config | " + " | ".join(keys) + " |")
    print("|" + "---|" * (len(keys) + 2))
    seen = []
    for r in results:
        if (r["dataset"], r["config"]) not in seen:
            seen.append((r["dataset"], r["config"]))
    datasets_seen = [d for d, _ in seen]
    seen.sort(key=lambda key: datasets_seen.index(key[0]))  # rows resumed from --out last: group by dataset
    for ds_name, cfg_name in seen:
        rows = [r for r in results if r["dataset"] == ds_name and r["config"] == cfg_name]
        base = cfg_name.removesuffix(" +filter")
        label = cfg_name
        if ds_name in sizes and base == default_config_name(sizes[ds_name]):
            label = base + " (default)" + cfg_name[len(base):]
        print(f"| {ds_name} | {label} | " + " | ".join(summarise(rows, k) for k in keys) + " |")


if __name__ == "__main__":
    main()
