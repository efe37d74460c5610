"""``ganaug info``: what a checkpoint holds (:func:`ganaug.checkpoint.read_metadata`), without loading the model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..run import checkpoint_path, read_settings
from ._options import json_option, quiet_option


def _info_text(ckpt: Path, meta: dict[str, Any], run: dict[str, Any] | None) -> str:
    data, model, training = meta["data"], meta["model"], meta["training"]
    params = meta.get("params", {})
    spec = data.get("spec", {})
    classes = [str(c) for c in data["classes"]]
    counts = data.get("class_counts", [])
    lo, hi = spec.get("value_range", [None, None])
    lines = [
        f"checkpoint     {ckpt}  (format {meta.get('format_version')}, created {meta.get('created')})",
        f"classes        {len(classes)}: {', '.join(classes)}",
        f"class counts   {', '.join(f'{c}: {k}' for c, k in zip(classes, counts))}",
        f"image shape    ({model['channels']}, {model['height']}, {model['width']})  (C, H, W)",
        (f"data format    {spec.get('dtype')} in [{lo:g}, {hi:g}], layout {spec.get('layout')}, "
        f"shape {tuple(spec.get('shape', []))}, {spec.get('container')}"),
        f"model          {model.get('arch')}: latent_dim {model.get('latent_dim')}, "
        f"embed_dim {model.get('embed_dim')}, "
        f"kernel {model.get('kernel_size')}x{model.get('kernel_size')}"
        + (" with a stride-1 block" if model.get("base_block", True) else "")
        + f", generator widths {model.get('g_widths')}, discriminator widths {model.get('d_widths')}"
        + (", spectral norm" if model.get("spectral_norm") else "")
        + (f", dropout {model['dropout']:g}" if model.get("dropout") else "")
        + (", minibatch std" if model.get("minibatch_std") else ""),
        (f"training       {training.get('epoch')}/{training.get('max_epochs')} epochs, {training.get('step')} steps, "
        f"batch {training.get('batch_size')}, lr_g {training.get('lr_g')}, lr_d {training.get('lr_d')}, "
        f"betas {tuple(training.get('betas', []))}, loss {training.get('loss')}, augment {training.get('augment')}, "
        f"ema {training.get('ema')}, seed {params.get('random_state')}"),
        f"classifier     {'yes' if meta.get('classifier') else 'no'} (domain classifier for metrics and filtering)",
        f"versions       ganaug {meta.get('ganaug_version')}, torch {meta.get('torch_version')}",
        f"weights        {meta['weights'].get('file')}  sha256 {meta['weights'].get('sha256')}",
    ]
    if run is not None:
        lines.append(f"trained on     {run.get('data')}")
    return "\n".join(lines)


@click.command("info")
@click.argument("run_dir", type=click.Path(path_type=Path))
@quiet_option
@json_option
def command(run_dir: Path, quiet: bool, as_json: bool) -> None:
    """Show what the checkpoint in RUN_DIR holds, without loading the model.

    Classes and their training counts, image shape, the data's dtype, range and layout,
    the model and training settings, and the versions that wrote it.

    \b
    Example:
      ganaug info runs/pets
      ganaug info runs/pets --json | python -c "import json,sys; print(json.load(sys.stdin)['data']['classes'])"
    """
    from ..checkpoint import read_metadata

    ckpt = checkpoint_path(run_dir)
    meta = read_metadata(ckpt)
    if as_json:
        click.echo(json.dumps(meta, indent=2))
    elif not quiet:
        try:
            run = read_settings(run_dir)
        except ValueError:
            run = None  # a corrupt run.json only loses the "trained on" line
        click.echo(_info_text(ckpt, meta, run))
