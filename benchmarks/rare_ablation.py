"""Rare-class ablation (issue 18, item 3): benchmarks/rare_classes.py once per generator setting.

    python benchmarks/rare_ablation.py                 # every variant, ~25 min on a 2-core CPU
    python benchmarks/rare_ablation.py --only default lecam-0.3
    python benchmarks/rare_ablation.py --report-only   # the table from the JSON files on disk

Each variant writes benchmarks/results/rare-classes/<name>.json (rare_classes.py --out); a
variant whose file exists is not run again. The table, benchmarks/results/rare-classes.md,
gives per variant the judge's class fidelity on the rare digits (5-9, 20 training images
each) and on the common ones, and the downstream balanced accuracy of a logistic regression
with GAN samples filling every class and with the hybrid (at most one synthetic image per
real one, the rest random oversampling), beside random oversampling. Means over 3 seeds.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "rare-classes"

# name: extra arguments of rare_classes.py
VARIANTS = {
    "default": [],
    "balanced-labels": ["--set", "fake_labels=balanced"],
    "lecam-0.1": ["--set", "lecam=0.1"],
    "lecam-0.3": ["--set", "lecam=0.3"],
    "lecam-0.3+balanced-labels": ["--set", "lecam=0.3", "--set", "fake_labels=balanced"],
    "augment-translation,cutout": ["--set", "augment=translation,cutout"],
    "epochs-90": ["--epochs", "90"],
    "epochs-90+balanced-labels": ["--epochs", "90", "--set", "fake_labels=balanced"],
    # item 4: the default generator, sampled from anchored latents (every GAN image of the row)
    "anchored-0": ["--latent-anchors", "0"],
    "anchored-0.3": ["--latent-anchors", "0.3"],
    "anchored-0.7": ["--latent-anchors", "0.7"],
    # item 3, fourth round: group spectral regularisation at two weights a decade apart around
    # the penalty's size at initialisation (about 1, like the hinge loss of G); UTLO-style
    # generators with the class entering after one and after both blocks (the 8x8 maximum)
    "group-spectral-0.1": ["--set", "group_spectral=0.1"],
    "group-spectral-1": ["--set", "group_spectral=1"],
    "unconditional-1": ["--set", "unconditional_blocks=1"],
    "unconditional-2": ["--set", "unconditional_blocks=2"],
    # item 4, second half: autoencoder pretraining for a third of the GAN's 30 epochs, with
    # prior and with anchored latents
    "pretrain-10": ["--set", "pretrain_epochs=10"],
    "pretrain-10+anchored-0.3": ["--set", "pretrain_epochs=10", "--latent-anchors", "0.3"],
}


def table(names: list[str]) -> str:
    lines = ["# Rare classes: generator settings (benchmarks/rare_ablation.py)", "",
             "scikit-learn's 8x8 digits, digits 5-9 cut to 20 training images (the others about 90); "
             "means over 3 seeds. Fidelity: share of 200 samples per class that an SVM trained on the held-out "
             "half assigns to their class. Balanced accuracy: a logistic regression on the held-out half.", "",
             "| variant | rare fidelity | common fidelity | BA, ROS | BA, GAN fill | BA, hybrid (cap 1) | steps | s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in names:
        path = OUT / f"{name}.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        m = r["means"]
        lines.append(f"| {name} | {m['rare_fidelity']:.3f} | {m['common_fidelity']:.3f} | "
                     f"{r['baselines']['random_oversampling']:.3f} | {m['balanced_accuracy_gan']:.3f} | "
                     f"{m['balanced_accuracy_hybrid']:.3f} | {m['steps']:.0f} | {m['train_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", choices=sorted(VARIANTS), help="run these variants only")
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args()
    names = args.only or list(VARIANTS)
    if not args.report_only:
        for name in names:
            path = OUT / f"{name}.json"
            if path.exists():
                continue
            print(f"== {name}", flush=True)
            subprocess.run([sys.executable, str(HERE / "rare_classes.py"), *VARIANTS[name], "--out", str(path)],
                           check=True)
    text = table(list(VARIANTS))
    (HERE / "results" / "rare-classes.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
