"""``ganaug train``: a training run into a run directory (:func:`ganaug.run.train_run`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import click
from click.core import ParameterSource

from ..params import PARAMETERS
from ..run import (
    ESTIMATOR_SETTINGS,
    RUN_FILE,
    TRAIN_DEFAULTS,
    TrainingInterrupted,
    read_settings,
    train_run,
)
from ._options import (
    DEVICE_HELP,
    Channels,
    DecayOrNone,
    NumberOrNone,
    Pair,
    Size,
    ValueRange,
    check_device,
    emit,
    force_option,
    json_option,
    quiet_option,
    show_progress,
)


class TrainOption(NamedTuple):
    """One setting of a run as a train option; its name (``--batch-size``: batch_size) is a key of
    TRAIN_DEFAULTS, and so of run.json and of a --config file, and gives its default."""

    flag: str
    type: Any
    help: str
    metavar: str | None = None

    @property
    def name(self) -> str:
        return self.flag.split("/")[0].removeprefix("--").replace("-", "_")


# Help that says more on the command line than the parameter's own.
_CLI_HELP = {
    "epochs": "Epochs to train in total (on --resume: the new total).",
    "seed": "Seeds weights, batches and noise: the same seed gives the same run on a CPU.",
    "device": DEVICE_HELP,
}


def _estimator_option(setting: str, name: str) -> TrainOption:
    """The option of an estimator parameter, from its declaration in ganaug.params."""
    p = PARAMETERS[name]
    flag = "--" + setting.replace("_", "-")
    help_text = _CLI_HELP.get(setting, p.help)
    if setting == "ema":
        return TrainOption(flag, DecayOrNone(), help_text)
    if p.kind == "bool":
        return TrainOption(f"{flag}/--no-{flag[2:]}", None, help_text)
    if p.kind in ("int", "seed"):
        low = 0 if p.kind == "seed" else p.low
        return TrainOption(flag, click.IntRange(None if low is None else int(low),
                                                None if p.high is None else int(p.high)), help_text)
    kinds = {"float": NumberOrNone(p.low, p.high, p.open), "choice": click.Choice(list(p.choices)), "pair": Pair()}
    metavar = {"text": "POLICY", "device": "DEVICE"}.get(p.kind)
    return TrainOption(flag, kinds.get(p.kind), help_text, metavar)


# The options of a run's settings, in --help order: how the data is read, the estimator's
# parameters (ganaug.params; verbose is --quiet), what the run writes.
TRAIN_OPTIONS = [
    TrainOption("--image-size", Size(), "Resize image-folder images on load: 32 or HxW such as 28x32."),
    TrainOption("--channels", Channels(),
                "Read image-folder images as grey (1) or RGB (3). Default: grey if all images are."),
    TrainOption("--value-range", ValueRange(),
                "Range of the data's values, LOW,HIGH (e.g. 0,65535 for 16-bit images). Default: 0,255 for "
                "8-bit images, 0,1 for floats."),
    *(_estimator_option(setting, name) for setting, name in ESTIMATOR_SETTINGS.items()),
    TrainOption("--grid-every", click.IntRange(0),
                "Write RUN_DIR/samples/epoch-NNNN.png every N epochs (0: only the final samples.png)."),
    TrainOption("--checkpoint-every", click.IntRange(1), "Save the checkpoint every N epochs (and at the end)."),
    TrainOption("--monitor-every", click.IntRange(0),
                "Every N steps, measure a fixed sample (class fidelity, Fréchet distance, precision, recall, "
                "density, coverage) and log it to RUN_DIR/log.jsonl; 0 (or --no-train-classifier) turns it off."),
]
# Where a value the user gave comes from; anything else is click's default.
_GIVEN = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT, ParameterSource.PROMPT,
          ParameterSource.DEFAULT_MAP)


def train_options(f: Callable) -> Callable:
    """Add the TRAIN_OPTIONS to a command; a setting with a default shows it."""
    for option in reversed(TRAIN_OPTIONS):
        default = TRAIN_DEFAULTS[option.name]
        shown = {} if default is None else {"default": default, "show_default": True}
        f = click.option(option.flag, type=option.type, metavar=option.metavar, help=option.help, **shown)(f)
    return f


def read_config(path: Path) -> dict[str, Any]:
    """A --config file (JSON or TOML) as ``{option name: value}``; unknown keys are refused."""
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            document = tomllib.loads(text)
        else:
            document = json.loads(text)
    except Exception as exc:  # json.JSONDecodeError, tomllib.TOMLDecodeError
        raise ValueError(f"Cannot read config file {path}: {exc}") from exc
    if not isinstance(document, dict):
        raise ValueError(f"Config file {path} must hold a table of option names and values.")  # noqa: TRY004
    # A null means None; click versions before 8.3 read None in a default_map as "not given", so
    # pass the word the options accept for it ('none'), and leave out nulls that are the default.
    config = {str(k).replace("-", "_"): "none" if v is None else v for k, v in document.items()
              if not (v is None and TRAIN_DEFAULTS.get(str(k).replace("-", "_")) is None)}
    allowed = set(TRAIN_DEFAULTS) | {"out"}
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise ValueError(f"Unknown keys {unknown} in config file {path}; known: {sorted(allowed)}.")
    return config


def _use_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Make the --config file the defaults (click's default_map): the command line wins."""
    if value is not None:
        ctx.default_map = {**(ctx.default_map or {}), **read_config(value)}
    return value


def _train_text(r: dict[str, Any]) -> str:
    resumed = f", resumed from epoch {r['resumed_from_epoch']}" if r["resumed_from_epoch"] else ""
    losses = ""
    if r["d_loss"] is not None:
        losses = f"; last epoch d_loss {r['d_loss']:.3f}, g_loss {r['g_loss']:.3f}"
    c, h, w = r["image_shape"]
    where = r["device"] + (f" x {r['processes']} processes" if r.get("processes", 1) > 1 else "")
    return "\n".join([
        (f"Trained {r['epochs']} epochs ({r['steps']} steps{resumed}) in {r['seconds']:.1f} s on {where}: "
        f"{r['n_images']} images {h}x{w}x{c}, {len(r['classes'])} classes{losses}."),
        f"  checkpoint  {r['checkpoint']}",
        f"  samples     {r['samples']}",
        f"  losses      {r['losses']}",
        f"  log         {r['log']}",
    ])


def run_training(settings: dict[str, Any], out: Path, *, resume: bool, force: bool, progress: bool) -> dict[str, Any]:
    """:func:`ganaug.run.train_run`; Ctrl-C says what was kept and exits with 130."""
    try:
        return train_run(settings, out, resume=resume, force=force, progress=progress)
    except TrainingInterrupted as exc:
        click.echo(str(exc), err=True)
        raise click.exceptions.Exit(130) from None


@click.command("train")
@click.argument("data", required=False)
@click.option("--out", "-o", type=click.Path(path_type=Path),
              help="Run directory to write (required; may come from --config).")
@train_options
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out from its last checkpoint.")
@force_option
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              is_eager=True, callback=_use_config,
              help="JSON or TOML file of option values (keys are option names); the command line wins.")
@quiet_option
@json_option
@click.pass_context
def command(ctx: click.Context, data: str | None, out: Path | None, resume: bool, force: bool,
            config_file: Path | None, quiet: bool, as_json: bool, **_: Any) -> None:
    """Train a conditional GAN on DATA and write the run to --out.

    Writes RUN_DIR/checkpoint/ (after every epoch), RUN_DIR/log.jsonl (one JSON line per
    epoch, and sample quality every --monitor-every steps), grids
    RUN_DIR/samples/epoch-NNNN.png, and at the end RUN_DIR/samples.png and
    RUN_DIR/losses.png. Ctrl-C keeps the last completed epoch; --resume continues from it.

    \b
    Example:
      ganaug train data/train --out runs/pets --image-size 64 --epochs 50
      ganaug train ../shared/data/mnist --out runs/mnist --epochs 20 --device cuda
      ganaug train --resume --out runs/pets              # after Ctrl-C or a crash
      ganaug train --resume --out runs/pets --epochs 80  # train on to 80 epochs
    """
    if resume and force:
        raise click.UsageError("--resume and --force exclude each other: --force starts the run afresh.")
    if out is None:
        raise click.UsageError("Missing option '--out' (the run directory).")
    # The settings the user gave (command line or --config); the rest come from the run's
    # run.json on --resume, else from the defaults (ganaug.run.train_run).
    given = {name: ctx.params[name] for name in TRAIN_DEFAULTS if ctx.get_parameter_source(name) in _GIVEN}
    saved = read_settings(out) if resume else None
    if given.get("data") is None and not (saved or {}).get("data"):
        raise click.UsageError(f"Missing argument 'DATA' (needed unless --resume finds RUN_DIR/{RUN_FILE}).")
    # The device given, or the one a resumed run was started with, in command-line words.
    check_device(given.get("device", (saved or {}).get("device", "auto")))
    result = run_training(given, out, resume=resume, force=force, progress=show_progress(quiet))
    emit(result, _train_text(result), quiet=quiet, as_json=as_json)
