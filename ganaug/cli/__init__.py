"""The ``ganaug`` command line: ``train``, ``generate``, ``evaluate``, ``info``, ``demo``.

One module per command; each parses its options, calls the public API
(:func:`ganaug.run.train_run`, :func:`ganaug.export.export_samples`,
:class:`ganaug.ConditionalDCGAN`, :mod:`ganaug.metrics`) and prints. Options the commands
share are defined once, in :mod:`ganaug.cli._options`. Heavy imports (torch, the model,
matplotlib) happen inside the commands so that ``ganaug --help`` stays quick.

Errors that users cause (bad data, missing checkpoint, unavailable device, ...) become
one ``Error: ...`` line and exit code 1 in one place, :class:`_Group`; ``ganaug --debug``
shows the full traceback instead. Usage errors are click's (exit code 2); an interrupted
command exits with 130.
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Any

# Before torch loads OpenMP: threads waiting at a barrier sleep instead of spinning, so a CPU
# shared with other work slows training about 1.5x instead of 3.2x (benchmarks/contention.py,
# docs/measurements.md). The user's own setting wins; the library leaves the environment alone.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import click  # noqa: E402

# USER_ERRORS: a user's mistake is one line; anything else keeps its traceback.
from .._io import USER_ERRORS  # noqa: E402
from .._version import __version__  # noqa: E402
from . import demo, evaluate, generate, info, train  # noqa: E402

__all__ = ["main"]


def _one_line(exc: BaseException | str) -> str:
    text = str(exc)
    if isinstance(exc, BaseException) and not text:
        text = type(exc).__name__
    return re.sub(r"\s*\n\s*", " ", text).strip()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"Warning: {_one_line(str(message))}", err=True)


class _Group(click.Group):
    """Runs a command; turns the errors users cause into one line (unless ``--debug``)."""

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug"))
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except USER_ERRORS as exc:
            if debug:
                raise
            raise click.ClickException(_one_line(exc)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="ganaug", message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, help="Show the full traceback of an error instead of one line.")
def main(debug: bool) -> None:
    """ganaug: train a class-conditional GAN on labelled images, then write class-balanced
    synthetic images.

    DATA is an image folder (one sub-folder per class), an .npz file with arrays X and y,
    a folder with MNIST-format IDX files, or `digits` (scikit-learn's 8x8 digits).

    \b
    Example:
      ganaug train data/train --out runs/pets --image-size 64 --epochs 50
      ganaug generate runs/pets --out data/synthetic --balance data/train
      ganaug evaluate runs/pets --data data/val
      ganaug info runs/pets
      ganaug demo
    """


for _module in (train, generate, evaluate, info, demo):
    main.add_command(_module.command)
