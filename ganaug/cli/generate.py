"""``ganaug generate``: a generated set from a run's model (:func:`ganaug.export.export_samples`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..run import checkpoint_path
from ._options import (
    check_device,
    device_option,
    emit,
    force_option,
    json_option,
    load_like_model,
    quiet_option,
    show_progress,
)


def _request_counts(gan: Any, meta: dict[str, Any], *, per_class: int | None, balance: str | None,
                    pairs: list[tuple[str, int]]) -> dict[Any, int]:
    """``{model class value: count}`` from the options; classes are named as on the command line."""
    classes = gan.classes_.tolist()
    by_name = {str(c): c for c in classes}
    if per_class is not None:
        return {c: int(per_class) for c in classes}
    if balance is not None:
        import numpy as np

        from ..sampling import synthetic_counts

        _, y = load_like_model(balance, meta)
        values, counts = np.unique(np.asarray(y), return_counts=True)
        real = {}
        for v, k in zip(values.tolist(), counts.tolist()):
            if str(v) not in by_name:
                raise ValueError(
                    f"{balance} has class {str(v)!r}, which the model does not know; it knows "
                    f"{', '.join(by_name)}."
                )
            real[by_name[str(v)]] = int(k)
        wanted = synthetic_counts(real, "not majority")
        return {c: wanted.get(c, 0) for c in classes}
    request: dict[Any, int] = {}
    for name, n in pairs:
        if name not in by_name:
            raise ValueError(f"Unknown class {name!r}; the model knows {', '.join(by_name)}.")
        if by_name[name] in request:
            raise ValueError(f"Class {name!r} is given twice; give each --class once.")
        request[by_name[name]] = int(n)
    return request


def generate_set(run_dir: Path, out: Path, *, per_class: int | None = None, balance: str | None = None,
                 pairs: Sequence[tuple[str, int]] = (), fmt: str = "imagefolder", seed: int = 0, batch_size: int = 512,
                 device: str = "auto", force: bool = False, progress: bool = False) -> dict[str, Any]:
    """Load the model in ``run_dir`` and export the requested set to ``out``."""
    from .._io import check_output_dir, refuse_overlap
    from ..checkpoint import read_metadata
    from ..export import SET_MARKERS, export_samples
    from ..gan import ConditionalDCGAN

    ckpt = checkpoint_path(run_dir)
    refuse_overlap(out, {"run directory": run_dir, "checkpoint": ckpt, "DATA": balance})
    check_output_dir(out, force=force, markers=SET_MARKERS)  # before the model loads; export checks again
    meta = read_metadata(ckpt)
    check_device(device)
    gan = ConditionalDCGAN.load(ckpt, device=device)
    counts = _request_counts(gan, meta, per_class=per_class, balance=balance, pairs=list(pairs))
    result = export_samples(gan, out, counts, format=fmt, seed=seed, batch_size=batch_size,
                            model_sha256=str(meta["weights"].get("sha256", "")), force=force, progress=progress)
    return {**result, "checkpoint": str(ckpt)}


def _generate_text(r: dict[str, Any]) -> str:
    from ..export import SAMPLES_NPZ

    per_class = "  ".join(f"{c}: {k}" for c, k in r["counts"].items())
    rate = f" ({r['images_per_s']:,.0f} images/s)" if r["images_per_s"] else ""
    where = r["out"] if r["format"] == "imagefolder" else str(Path(r["out"]) / SAMPLES_NPZ)
    return "\n".join([
        f"Generated {r['total']:,} images in {r['seconds']:.1f} s{rate} into {where} ({r['format']}).",
        f"  per class  {per_class}",
        f"  manifest   {r['manifest']}  (file, class, seed, model_sha256)",
    ])


@click.command("generate")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path), help="Directory to write.")
@click.option("--per-class", type=click.IntRange(0), help="N images of every class.")
@click.option("--balance", metavar="DATA",
              help="Fill every class of DATA up to its largest class (imbalanced-learn's 'not majority').")
@click.option("--class", "class_names", multiple=True, metavar="C", help="A class to generate (repeatable, with --n).")
@click.option("--n", "class_ns", multiple=True, type=click.IntRange(0), help="How many of the matching --class.")
@click.option("--format", "fmt", type=click.Choice(["imagefolder", "npz"]), default="imagefolder", show_default=True,
              help="imagefolder: OUT/<class>/<id>.png (torchvision ImageFolder); npz: OUT/samples.npz with X, y.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0), help="Image i gets seed SEED + i.")
@click.option("--batch-size", default=512, show_default=True, type=click.IntRange(1),
              help="Images generated and written per batch.")
@device_option
@force_option
@quiet_option
@json_option
def command(run_dir: Path, out: Path, per_class: int | None, balance: str | None, class_names: tuple[str, ...],
            class_ns: tuple[int, ...], fmt: str, seed: int, batch_size: int, device: str, force: bool,
            quiet: bool, as_json: bool) -> None:
    """Generate images with the model in RUN_DIR into --out.

    Give exactly one of --per-class, --balance or --class/--n. Images have the training
    data's size and channels. OUT/manifest.csv lists file, class, seed and the model's
    SHA-256, so that any image can be regenerated (ConditionalDCGAN.sample_from_seeds) and
    traced. The set is written under a temporary name and moved into place when complete.

    \b
    Example:
      ganaug generate runs/pets --out data/synthetic --per-class 1000
      ganaug generate runs/pets --out data/balanced --balance data/train
      ganaug generate runs/pets --out extra --class cat --n 500 --class dog --n 200
      ganaug generate runs/mnist --out mnist.synthetic --per-class 10000 --format npz
    """
    modes = sum([per_class is not None, balance is not None, bool(class_names or class_ns)])
    if modes != 1:
        raise click.UsageError("Give exactly one of --per-class N, --balance DATA, or --class C --n N.")
    if len(class_names) != len(class_ns):
        raise click.UsageError("Give one --n for every --class (e.g. --class cat --n 500 --class dog --n 200).")
    try:
        result = generate_set(run_dir, out, per_class=per_class, balance=balance,
                              pairs=list(zip(class_names, class_ns)), fmt=fmt, seed=seed, batch_size=batch_size,
                              device=device, force=force, progress=show_progress(quiet))
    except KeyboardInterrupt:
        click.echo(f"Interrupted; nothing was written to {out}.", err=True)
        raise click.exceptions.Exit(130) from None
    emit(result, _generate_text(result), quiet=quiet, as_json=as_json)
