"""``ganaug demo``: ``train digits`` then ``generate``, in one command."""

from __future__ import annotations

from pathlib import Path

import click

from ..run import RUN_MARKERS
from ._options import (
    check_device,
    device_option,
    emit,
    force_option,
    json_option,
    quiet_option,
    show_progress,
)
from .generate import generate_set
from .train import run_training


@click.command("demo")
@click.option("--out", "-o", default="runs/demo", show_default=True, type=click.Path(path_type=Path))
@click.option("--epochs", default=30, show_default=True, type=click.IntRange(1))
@click.option("--per-class", default=100, show_default=True, type=click.IntRange(0),
              help="Synthetic images per class in the augmentation set.")
@device_option
@force_option
@quiet_option
@json_option
def command(out: Path, epochs: int, per_class: int, device: str, force: bool, quiet: bool, as_json: bool) -> None:
    """Train on scikit-learn's 8x8 digits, then write a sample grid and an augmentation set.

    The same as `ganaug train digits --out OUT/run` followed by
    `ganaug generate OUT/run --out OUT/augmented --per-class 100` (about 35 s on 2 CPU cores).

    \b
    Example:
      ganaug demo
      ganaug demo --out /tmp/demo --epochs 5 --force
    """
    from .._io import check_output_dir
    from ..export import SET_MARKERS

    # --force replaces the two folders the demo writes, each only if ganaug wrote it; anything
    # else in OUT is left alone.
    if not force or out.is_symlink():
        check_output_dir(out, force=False)
    for part, markers in ((out / "run", RUN_MARKERS), (out / "augmented", SET_MARKERS)):
        check_output_dir(part, force=force, markers=markers)
    check_device(device)
    progress = show_progress(quiet)
    trained = run_training({"data": "digits", "epochs": epochs, "device": device}, out / "run", resume=False,
                           force=force, progress=progress)
    generated = generate_set(out / "run", out / "augmented", per_class=per_class, device=device, force=force,
                             progress=progress)
    summary = {"train": trained, "generate": generated}
    text = "\n".join([
        (f"Trained on the digits ({trained['n_images']} images 8x8, {len(trained['classes'])} classes) for "
        f"{trained['epochs']} epochs in {trained['seconds']:.1f} s; wrote {generated['total']:,} synthetic images "
        f"({per_class} per class) in {generated['seconds']:.1f} s."),
        f"  sample grid       {trained['samples']}",
        f"  loss curve        {trained['losses']}",
        f"  checkpoint        {trained['checkpoint']}",
        f"  augmentation set  {generated['out']}  (ImageFolder layout, manifest.csv)",
        f"Next: ganaug info {out / 'run'}   |   ganaug evaluate {out / 'run'} --data digits",
    ])
    emit(summary, text, quiet=quiet, as_json=as_json)
