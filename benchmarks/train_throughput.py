"""Training throughput (images/s) on MNIST from ../shared/data/mnist.

    python benchmarks/train_throughput.py                  # classic 28x28 preset, CPU
    python benchmarks/train_throughput.py --arch dcgan --device cuda
    python benchmarks/train_throughput.py --arch dcgan --width 64 --kernel-size 5

Trains for --epochs on the first --n images (after one warm-up epoch that is not timed)
and prints one JSON line: arch, device, threads, images/s.
"""

import argparse
import json
import time
from pathlib import Path

import torch

from ganaug import ConditionalDCGAN, load_idx

DEFAULT_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_MNIST)
    p.add_argument("--arch", default="classic", choices=["classic", "dcgan"])
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--width", type=int, default=None, help="dcgan only; default: the model's")
    p.add_argument("--kernel-size", type=int, default=None, help="dcgan only; default: the model's")
    p.add_argument("--device", default="auto")
    args = p.parse_args()

    X, y = load_idx(args.data)
    X, y = X[: args.n], y[: args.n]
    gan = ConditionalDCGAN(arch=args.arch, max_epochs=1, batch_size=args.batch_size, device=args.device,
                           width=args.width, kernel_size=args.kernel_size, train_classifier=False,
                           random_state=0, verbose=False)
    gan.fit(X, y)  # warm-up epoch: allocations, kernel selection
    gan.set_params(max_epochs=1 + args.epochs)
    if gan.device_.type == "cuda":
        torch.cuda.synchronize()
    steps_before = gan.n_steps_
    start = time.perf_counter()
    gan.fit(X, y, resume=True)
    if gan.device_.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    images = (gan.n_steps_ - steps_before) * gan.train_config_.batch_size
    device_name = torch.cuda.get_device_name(gan.device_) if gan.device_.type == "cuda" else "cpu"
    print(json.dumps({
        "arch": args.arch, "width": gan.model_config_.g_widths[-1] if args.arch == "dcgan" else None,
        "kernel_size": gan.model_config_.kernel_size, "device": device_name, "torch_threads": torch.get_num_threads(),
        "batch_size": gan.train_config_.batch_size, "images": images, "seconds": round(seconds, 2),
        "images_per_s": round(images / seconds, 1),
    }))


if __name__ == "__main__":
    main()
