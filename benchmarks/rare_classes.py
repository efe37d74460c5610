"""Rare classes: how good are the generator's samples of a class it saw only a few times?

    python benchmarks/rare_classes.py                   # digits 5-9 cut to 20 images, 3 seeds, ~1 min
    python benchmarks/rare_classes.py --n-rare 10 --set ema=None
    python benchmarks/rare_classes.py --latent-anchors 0.3   # anchored latents (ganaug.anchors)

scikit-learn's 8x8 digits, split in half (stratified, seed 0). The GAN trains on the
first half with digits 5-9 cut to --n-rare images each (digits 0-4 keep ~90), for
--epochs epochs (the CLI's default 30). Two measurements that do not depend on the
GAN's own domain classifier, which is itself weak on classes it saw a few times:

* class fidelity by an independent judge: an RBF support-vector classifier trained on
  the balanced held-out half (its accuracy on the GAN's training images is printed),
  applied to 200 samples per class; reported for the rare and the common digits;
* downstream balanced accuracy on the held-out half of a logistic regression trained
  on the imbalanced half as is, with random oversampling, with GAN samples filling
  every class up to the largest, and hybrid: balanced like random oversampling with at
  most one synthetic image per real image of a class (``max_synthetic_per_real=1``).

``--out FILE`` also writes the settings, the per-seed rows and their means as JSON.
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

from ganaug import ConditionalDCGAN
from ganaug.anchors import LatentAnchors
from ganaug.params import parse_settings
from ganaug.sklearn import GANOverSampler

RARE = [5, 6, 7, 8, 9]


def flat(images: np.ndarray) -> np.ndarray:
    return np.asarray(images).reshape(len(images), -1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-rare", type=int, default=20, help="training images of each of digits 5-9")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE",
                   help="a ConditionalDCGAN parameter, e.g. ema=none or lecam=0.3")
    p.add_argument("--latent-anchors", type=float, metavar="SPREAD",
                   help="sample every GAN image from anchored latents (LatentAnchors of the training images, "
                        "GANOverSampler(latent_anchors=SPREAD) for the hybrid)")
    p.add_argument("--out", type=Path, help="write the rows and means as JSON here")
    args = p.parse_args()
    settings = parse_settings(args.set)

    X, y = load_digits(return_X_y=True)
    X = X.reshape(-1, 8, 8) / 16.0
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, stratify=y, random_state=0)
    keep = np.concatenate([np.flatnonzero(y_train == c)[: args.n_rare if c in RARE else None] for c in range(10)])
    X_train, y_train = X_train[keep], y_train[keep]
    counts = np.bincount(y_train, minlength=10)
    print(f"training images per class: {counts.tolist()}; held out: {len(y_test)}")

    judge = SVC().fit(flat(X_test), y_test)
    judge_accuracy = judge.score(flat(X_train), y_train)

    def balanced_accuracy(images: np.ndarray, labels: np.ndarray) -> float:
        model = LogisticRegression(max_iter=5000).fit(flat(images), labels)
        return balanced_accuracy_score(y_test, model.predict(flat(X_test)))

    oversampled = np.concatenate([
        np.random.default_rng(0).choice(np.flatnonzero(y_train == c), counts.max()) for c in range(10)
    ])
    print(f"judge (trained on the held-out half): {judge_accuracy:.1%} on the GAN's training images")
    baselines = {"real_only": round(balanced_accuracy(X_train, y_train), 3),
                 "random_oversampling": round(balanced_accuracy(X_train[oversampled], y_train[oversampled]), 3)}
    print(f"balanced accuracy: real only {baselines['real_only']:.3f}, random oversampling "
          f"{baselines['random_oversampling']:.3f}")

    fill = {c: int(counts.max() - counts[c]) for c in range(10) if counts[c] < counts.max()}
    rows = []
    for seed in range(args.seeds):
        start = time.perf_counter()
        gan = ConditionalDCGAN(max_epochs=args.epochs, random_state=seed, verbose=False, **settings)
        gan.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        anchors = None if args.latent_anchors is None else LatentAnchors.from_real(
            gan, X_train, y_train, spread=args.latent_anchors, random_state=seed)
        anchor_seconds = time.perf_counter() - start
        fake, fake_labels = gan.sample({c: 200 for c in range(10)}, random_state=seed, anchors=anchors)
        predicted = judge.predict(flat(fake))
        fidelity = {c: float((predicted[fake_labels == c] == c).mean()) for c in range(10)}
        X_gan, y_gan = gan.sample(fill, random_state=seed, anchors=anchors)
        X_hybrid, y_hybrid = GANOverSampler(generator=gan, image_shape=(8, 8), value_range=(0, 1),
                                            max_synthetic_per_real=1, random_state=seed,
                                            latent_anchors=args.latent_anchors).fit_resample(flat(X_train), y_train)
        rows.append({
            "seed": seed, "train_seconds": round(seconds, 1), "steps": gan.n_steps_,
            **({} if anchors is None else {"anchor_seconds": round(anchor_seconds, 1)}),
            "rare_fidelity": round(float(np.mean([fidelity[c] for c in RARE])), 3),
            "common_fidelity": round(float(np.mean([fidelity[c] for c in range(10) if c not in RARE])), 3),
            "balanced_accuracy_gan": round(balanced_accuracy(np.concatenate([X_train, X_gan]),
                                                             np.concatenate([y_train, y_gan])), 3),
            "balanced_accuracy_hybrid": round(balanced_accuracy(X_hybrid, y_hybrid), 3),
        })
        print(json.dumps(rows[-1]), flush=True)
    means = {k: round(float(np.mean([r[k] for r in rows])), 3) for k in rows[0] if k != "seed"}
    print("mean over seeds:", json.dumps(means))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"settings": args.set, "latent_anchors": args.latent_anchors,
                                        "n_rare": args.n_rare, "epochs": args.epochs,
                                        "counts": counts.tolist(), "baselines": baselines, "rows": rows,
                                        "means": means}, indent=1) + "\n")


if __name__ == "__main__":
    main()
