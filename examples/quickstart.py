"""ganaug quick start: learn the 8x8 digits bundled with scikit-learn, then sample any class.

    python examples/quickstart.py            # ~16 s on a 2-core CPU
    python examples/quickstart.py --epochs 2 --out /tmp/quick   # a smoke run

Writes ``<out>/checkpoint/`` and ``<out>/samples.png`` (one row per digit) and prints how
often a classifier trained on real digits recognises each generated digit.
"""

import argparse
from pathlib import Path

from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from ganaug import ConditionalDCGAN, load_digits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("runs/quickstart"))
    args = parser.parse_args()

    X, y = load_digits()  # float32 images in [0, 1], shape (1797, 8, 8)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)

    gan = ConditionalDCGAN(max_epochs=args.epochs, random_state=0)
    gan.fit(X_train, y_train)

    fakes, labels = gan.sample({3: 500, 7: 200})  # exactly these counts of these classes
    print(f"sampled {fakes.shape} {fakes.dtype} images of classes {sorted(set(labels.tolist()))}")
    fakes, labels = gan.sample(1000)  # or n samples spread evenly over all classes

    gan.save(args.out / "checkpoint", overwrite=True)
    gan = ConditionalDCGAN.load(args.out / "checkpoint")
    grid = gan.save_grid(args.out / "samples.png", scale=4)

    judge = LogisticRegression(max_iter=5000).fit(X_train.reshape(len(X_train), -1), y_train)
    real_acc = judge.score(X_test.reshape(len(X_test), -1), y_test)
    fake_acc = judge.score(fakes.reshape(len(fakes), -1), labels)
    print(f"classifier trained on real digits: {real_acc:.1%} on held-out real, {fake_acc:.1%} on generated")
    print(f"checkpoint: {args.out / 'checkpoint'}\nsample grid: {grid}")


if __name__ == "__main__":
    main()
