"""``ganaug evaluate``: the quality of a run's generator (:func:`ganaug.metrics.evaluate_generator`)."""

from __future__ import annotations

from pathlib import Path

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
)


@click.command("evaluate")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--data", required=True, metavar="DATA", help="Real images to compare with (ideally held out).")
@click.option("--n-per-class", default=500, show_default=True, type=click.IntRange(2),
              help="Real images used per class (the rest are skipped, for speed).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0))
@click.option("--out", "-o", type=click.Path(path_type=Path),
              help="Also write report.json, samples.png, nearest.png and losses.png to this folder.")
@device_option
@force_option
@quiet_option
@json_option
def command(run_dir: Path, data: str, n_per_class: int, seed: int, out: Path | None, device: str, force: bool,
            quiet: bool, as_json: bool) -> None:
    """Measure the generator in RUN_DIR against the real images in --data.

    Reports the Fréchet distance (beside its real-vs-real floor), precision/recall,
    density/coverage, class fidelity, CAS and memorisation, in the domain classifier's
    feature space. See ganaug.metrics.

    \b
    Example:
      ganaug evaluate runs/pets --data data/val
      ganaug evaluate runs/mnist --data ../shared/data/mnist --json > quality.json
      ganaug evaluate runs/pets --data data/val --out reports/pets
    """
    from .._io import check_output_dir, disk_errors, refuse_overlap
    from ..checkpoint import read_metadata
    from ..report import REPORT_MARKERS

    ckpt = checkpoint_path(run_dir)
    meta = read_metadata(ckpt)
    if out is not None:
        refuse_overlap(out, {"run directory": run_dir, "checkpoint": ckpt, "DATA": data})
        check_output_dir(out, force=force, markers=REPORT_MARKERS)
    check_device(device)
    X, y = load_like_model(data, meta)
    from ..gan import ConditionalDCGAN
    from ..metrics import evaluate_generator, format_report

    gan = ConditionalDCGAN.load(ckpt, device=device)
    report = evaluate_generator(gan, X, y, n_per_class=n_per_class, random_state=seed)
    text = format_report(report)
    if out is not None:
        from ..report import write_report

        with disk_errors(out):
            write_report(gan, X, y, out, report)
        text += f"\n\nReport written to {out}"
    emit(report, text, quiet=quiet, as_json=as_json)
