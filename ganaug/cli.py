"""The ``ganaug`` command line: ``train``, ``generate``, ``evaluate``, ``info``, ``demo``.

Thin wrappers over the public API (:class:`ganaug.ConditionalDCGAN`, the loaders in
:mod:`ganaug.data`, :func:`ganaug.sampling.synthetic_counts`,
:func:`ganaug.checkpoint.read_metadata`, :mod:`ganaug.metrics`). Heavy imports (torch,
the model, matplotlib) happen inside the commands so that ``ganaug --help`` stays quick.

Errors that users cause (bad data, missing checkpoint, unavailable device, ...) become
one ``Error: ...`` line and exit code 1 in one place, :class:`_Group`; ``ganaug --debug``
shows the full traceback instead. Usage errors are click's (exit code 2); an interrupted
command exits with 130.

A training run directory holds::

    RUN_DIR/run.json               the train settings (so --resume needs only --out)
    RUN_DIR/checkpoint/            ConditionalDCGAN.save(), after every epoch by default
    RUN_DIR/log.jsonl              one JSON line per epoch: losses, seconds, images/s; and
                                   every --monitor-every steps a line {"epoch", "step",
                                   "metrics": class fidelity, FD, precision, recall, ...}
    RUN_DIR/samples/epoch-0005.png a grid (one row per class) every --grid-every epochs
    RUN_DIR/samples.png            the final grid
    RUN_DIR/losses.png             discriminator and generator loss per step

``train --resume`` continues from the checkpoint bit-identically (same seed stream);
log lines of epochs after the checkpoint (written before a kill) are dropped and
rewritten, so log.jsonl always holds each epoch once, in order.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import re
import shlex
import shutil
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import click
from click.core import ParameterSource

from ._io import (MANIFEST_HEADER, NpyStream, check_output_dir, clean_stale_partials, disk_errors, ganaug_marker,
                  make_partial_dir, non_empty_dir, publish_dir, refuse_overlap, set_aside)
from ._version import __version__

__all__ = ["main"]

# Exceptions a user can cause with bad input; anything else is a bug and keeps its traceback.
# (FileNotFoundError and FileExistsError are OSErrors; ganaug.CheckpointError is a ValueError.)
USER_ERRORS = (ValueError, TypeError, OSError, FloatingPointError)

# train's settings: click defaults, the keys of run.json and of a --config file. Model and
# training defaults restate ConditionalDCGAN's (a test checks that they agree).
TRAIN_DEFAULTS: dict[str, Any] = {
    "data": None,
    "epochs": 30,
    "batch_size": None,
    "image_size": None,
    "channels": None,
    "arch": "dcgan",
    "width": None,
    "kernel_size": None,
    "latent_dim": 100,
    "loss": "hinge",
    "spectral_norm": True,
    "augment": "translation",
    "ema": 0.999,
    "device": "auto",
    "seed": 0,
    "grid_every": 5,
    "checkpoint_every": 1,
    "monitor_every": 200,
    "value_range": None,
}
# Settings that define the model or its training stream; a resumed run must keep them.
_FIXED_ON_RESUME = {
    "arch": "arch", "width": "width", "kernel_size": "kernel_size", "latent_dim": "latent_dim",
    "batch_size": "batch_size", "loss": "loss", "spectral_norm": "spectral_norm", "augment": "augment",
    "ema": "ema", "seed": "random_state",
}
RUN_FILE = "run.json"
LOG_FILE = "log.jsonl"
MANIFEST = "manifest.csv"
# The marker each command's output carries; --force replaces only its own kind.
RUN_MARKERS, SET_MARKERS, REPORT_MARKERS = (RUN_FILE,), (MANIFEST,), ("report.json",)


# --------------------------------------------------------------------------- plumbing


def _one_line(exc: BaseException | str) -> str:
    text = str(exc)
    if isinstance(exc, BaseException) and not text:
        text = type(exc).__name__
    return re.sub(r"\s*\n\s*", " ", text).strip()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
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


class _Size(click.ParamType):
    """``32`` (square) or ``28x32`` (height x width)."""

    name = "SIZE"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None or isinstance(value, int):
            return value
        if isinstance(value, (list, tuple)) and len(value) == 2:
            return (int(value[0]), int(value[1]))
        match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", str(value))
        if not match:
            self.fail(f"{value!r} is not a size; use e.g. 32 or 28x32 (height x width).", param, ctx)
        h, w = match.groups()
        return int(h) if w is None else (int(h), int(w))


class _DecayOrNone(click.ParamType):
    """A decay in (0, 1) such as 0.999, or ``none``."""

    name = "DECAY|none"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None or isinstance(value, float):
            return value
        if str(value).strip().lower() in ("none", "off"):
            return None
        try:
            decay = float(value)
        except ValueError:
            decay = -1.0
        if not 0 < decay < 1:
            self.fail(f"{value!r} is not a decay in (0, 1) such as 0.999, or 'none'.", param, ctx)
        return decay


class _ValueRange(click.ParamType):
    """``LOW,HIGH``: the range of the data's values, e.g. 0,65535 for 16-bit images."""

    name = "LOW,HIGH"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:
            return None
        parts = value if isinstance(value, (list, tuple)) else str(value).split(",")
        try:
            low, high = (float(v) for v in parts)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a range; use LOW,HIGH such as 0,65535.", param, ctx)
        if not (math.isfinite(low) and math.isfinite(high) and high > low):
            self.fail(f"{value!r} is not a range with finite LOW < HIGH.", param, ctx)
        return (low, high)


class _Channels(click.ParamType):
    """1 (grey) or 3 (RGB)."""

    name = "1|3"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:
            return None
        if str(value).strip() not in ("1", "3"):
            self.fail(f"{value!r} is not 1 (grey) or 3 (RGB).", param, ctx)
        return int(str(value).strip())


def _quiet_option(f: Callable) -> Callable:
    return click.option("--quiet", "-q", is_flag=True, help="No progress bars and no summary text.")(f)


def _json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")(f)


def _force_option(f: Callable) -> Callable:
    return click.option("--force", is_flag=True,
                        help="Replace an existing output directory that ganaug wrote (never another folder).")(f)


def _device_option(f: Callable) -> Callable:
    return click.option(
        "--device", default="auto", show_default=True, metavar="DEVICE",
        help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.",
    )(f)


def _progress(quiet: bool) -> bool:
    """Progress bars only for a person watching a terminal."""
    return not quiet and sys.stderr.isatty()


def _emit(summary: dict[str, Any], text: str, *, quiet: bool, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
    elif not quiet:
        click.echo(text)


def _check_device(device: str) -> Any:
    """The torch.device for ``device``, or a ValueError in command-line words."""
    from .gan import resolve_device

    try:
        return resolve_device(device)
    except ValueError as exc:
        if "Unknown device" in str(exc):
            raise ValueError(f"Unknown device {device!r}; use --device auto, cpu, cuda, cuda:N or mps.") from exc
        raise ValueError(
            f"Device {device!r} is not available on this machine; use --device cpu or --device auto."
        ) from exc


def _checkpoint_dir(run_dir: Path) -> Path:
    """RUN_DIR/checkpoint, or RUN_DIR itself when it is a checkpoint directory."""
    if (run_dir / "ganaug.json").is_file() and not (run_dir / "checkpoint").is_dir():
        return run_dir
    return run_dir / "checkpoint"


def _load_data(source: str, *, image_size: Any = None, channels: int | None = None) -> tuple[Any, Any]:
    """``load_source`` with the image-folder options; says when they cannot apply."""
    from .data import load_source

    kwargs = {k: v for k, v in (("image_size", image_size), ("channels", channels)) if v is not None}
    X, y = load_source(source, **kwargs)
    if image_size is not None:
        want = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if tuple(X.shape[1:3]) != want:
            raise ValueError(
                f"--image-size applies to image folders only; {source} holds {X.shape[1]}x{X.shape[2]} images."
            )
    if channels is not None:
        have = 1 if X.ndim == 3 else X.shape[-1]
        if have != channels:
            raise ValueError(f"--channels applies to image folders only; {source} holds {have}-channel images.")
    return X, y


def _load_like_model(source: str, meta: dict[str, Any]) -> tuple[Any, Any]:
    """Load real data for a model: image folders are resized to the model's images."""
    from .data import load_source

    model = meta["model"]
    path = Path(source)
    if source != "digits" and path.is_dir():
        channels = model["channels"] if model["channels"] in (1, 3) else None
        kwargs: dict[str, Any] = {"image_size": (model["height"], model["width"])}
        if channels is not None:
            kwargs["channels"] = channels
        return load_source(source, **kwargs)
    return load_source(source)


def _write_json(path: Path, document: Any) -> None:
    from ._io import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(document, indent=2, default=str) + "\n").encode("utf-8"))


# --------------------------------------------------------------------------- the group


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


# --------------------------------------------------------------------------- train


class _EpochHook:
    """fit's callback: log line, checkpoint and grid after each epoch; knows what is on disk."""

    def __init__(self, run_dir: Path, *, n_images: int, checkpoint_every: int, grid_every: int,
                 saved_epoch: int, step: int) -> None:
        self.run_dir = run_dir
        self.n_images = n_images
        self.checkpoint_every = max(1, int(checkpoint_every))
        self.grid_every = int(grid_every or 0)
        self.saved_epoch = saved_epoch  # epoch of the checkpoint on disk (0: none)
        self.completed = saved_epoch
        self.last_step = step
        self.in_callback = False
        self.interrupted = False  # set by the SIGINT handler of `train`
        self.last_losses: tuple[float | None, float | None] = (None, None)
        self.started = self.last_time = time.perf_counter()

    def __call__(self, gan: Any, state: Any) -> None:
        self.in_callback = True  # the weights are those of a completed epoch until we return
        self.completed = state.epoch
        now = time.perf_counter()
        seconds = now - self.last_time
        steps = state.step - self.last_step
        mean = lambda key: (sum(state.history[key][-steps:]) / steps) if steps else None  # noqa: E731
        batch = min(gan.train_config_.batch_size, self.n_images)
        record = {
            "epoch": state.epoch, "step": state.step, "d_loss": mean("d_loss"), "g_loss": mean("g_loss"),
            "d_real": mean("d_real"), "d_fake": mean("d_fake"), "seconds": round(seconds, 4),
            "images_per_s": round(steps * batch / seconds, 1) if seconds > 0 else None,
        }
        self.last_losses = (record["d_loss"], record["g_loss"])
        # The log line goes first: a kill before the checkpoint leaves a line that a resume rewrites.
        with open(self.run_dir / LOG_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if state.epoch % self.checkpoint_every == 0 or state.epoch >= gan.max_epochs:
            gan.save(self.run_dir / "checkpoint", overwrite=True)
            self.saved_epoch = state.epoch
        if self.grid_every and state.epoch % self.grid_every == 0:
            (self.run_dir / "samples").mkdir(exist_ok=True)
            gan.save_grid(self.run_dir / "samples" / f"epoch-{state.epoch:04d}.png", n_per_class=10,
                          random_state=0, scale=_grid_scale(gan))
        self.last_step = state.step
        self.last_time = time.perf_counter()
        if self.interrupted:
            # Ctrl-C came, but its KeyboardInterrupt was lost: Python drops exceptions raised
            # inside finalisers (__del__, weakref callbacks). Stop here, after a full epoch.
            raise KeyboardInterrupt
        self.in_callback = False


def _grid_scale(gan: Any) -> int:
    return max(1, 64 // max(gan.image_shape_[1:]))


def _plot_losses(gan: Any, path: Path) -> None:
    from .report import plot_losses

    plot_losses(gan.history_, path)


def _truncate_log(path: Path, last_epoch: int) -> None:
    """Keep the log lines of epochs 1..last_epoch: a resumed run rewrites the later ones."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if int(json.loads(line)["epoch"]) <= last_epoch:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line of a killed run
    from ._io import atomic_write_bytes

    atomic_write_bytes(path, "".join(line + "\n" for line in kept).encode("utf-8"))


def _train(settings: dict[str, Any], run_dir: Path, *, resume: bool, force: bool, progress: bool,
           explicit: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Train (or resume) into ``run_dir``; the shared body of ``train`` and ``demo``.

    ``explicit`` names the settings the user gave (command line or config file): on resume
    these must agree with the checkpoint's model and training stream.
    """
    s = dict(settings)
    if s["data"] is None:
        raise click.UsageError("Missing argument 'DATA' (needed unless --resume finds RUN_DIR/run.json).")
    ckpt = run_dir / "checkpoint"
    from .checkpoint import is_checkpoint

    refuse_overlap(run_dir, {"DATA": s["data"]})
    if non_empty_dir(run_dir) and resume:
        if run_dir.is_symlink():
            check_output_dir(run_dir, force=True, what="Run directory")  # refuses the link in one line
        if not (ganaug_marker(run_dir, RUN_MARKERS) or is_checkpoint(ckpt)):
            raise FileExistsError(
                f"{run_dir} holds no ganaug run to resume (no {RUN_FILE} of ganaug's, no checkpoint/); "
                "choose another --out or drop --resume."
            )
    elif non_empty_dir(run_dir) and not force:
        check_output_dir(run_dir, force=True, what="Run directory", markers=RUN_MARKERS)
        raise FileExistsError(
            f"Run directory {run_dir} is not empty; pass --resume to continue the run in it, --force to "
            "start afresh (deleting it), or choose another --out."
        )
    else:
        check_output_dir(run_dir, force=force, what="Run directory", markers=RUN_MARKERS)
    for name in (RUN_FILE, LOG_FILE, "checkpoint", "samples", "samples.png", "losses.png"):
        if (run_dir / name).is_symlink():
            raise FileExistsError(
                f"{run_dir / name} is a symbolic link; ganaug does not write through links out of the run directory."
            )
    _check_device(s["device"])
    X, y = _load_data(s["data"], image_size=s["image_size"], channels=s["channels"])

    from .gan import ConditionalDCGAN

    gan = None
    if resume and is_checkpoint(ckpt):
        gan = ConditionalDCGAN.load(ckpt, device=s["device"])
        params = gan.get_params()
        for key, param in _FIXED_ON_RESUME.items():
            if key in explicit and s[key] is not None and s[key] != params[param]:
                raise ValueError(
                    f"Cannot resume with --{key.replace('_', '-')} {s[key]}: the run in {run_dir} was trained "
                    f"with {params[param]}. Drop the option, or start a new run with --force."
                )
            s[key] = params[param]  # what the checkpoint was trained with is what continues
        gan.set_params(max_epochs=int(s["epochs"]), verbose=progress)
    # A fresh run that fails before its first checkpoint leaves what was there before: a run
    # replaced with --force is only set aside (RUN.old-PID) until the new one has an epoch saved.
    fresh = gan is None
    replaced = None
    with disk_errors(run_dir):
        if is_checkpoint(ckpt):
            # A run replaced by a --force run that was killed after saving an epoch. (Killed
            # before that, the set-aside run is all there is: it stays, as RUN.old-PID.)
            clean_stale_partials(run_dir)
        if fresh and force and non_empty_dir(run_dir):
            replaced = set_aside(run_dir)
        created = not run_dir.exists()
        run_dir.mkdir(parents=True, exist_ok=True)

    def undo() -> bool:
        """Remove a fresh run that saved no epoch, and bring back the run it replaced."""
        if not fresh or hook.saved_epoch:
            return False
        if created:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            for name in (RUN_FILE, LOG_FILE):
                (run_dir / name).unlink(missing_ok=True)
        if replaced is not None:
            os.replace(replaced, run_dir)
        return True

    stored = dict(s)
    if stored["data"] != "digits":
        stored["data"] = str(Path(stored["data"]).resolve())
    stored["ganaug_version"] = __version__
    if gan is None:
        gan = ConditionalDCGAN(
            arch=s["arch"], latent_dim=int(s["latent_dim"]), width=None if s["width"] is None else int(s["width"]),
            kernel_size=s["kernel_size"],
            max_epochs=int(s["epochs"]), batch_size=s["batch_size"], loss=s["loss"],
            spectral_norm=bool(s["spectral_norm"]),
            augment=None if str(s["augment"]).lower() in ("none", "") else s["augment"], ema=s["ema"],
            device=s["device"], random_state=int(s["seed"]), verbose=progress,
        )
        start_epoch = start_step = 0
    else:
        start_epoch, start_step = gan.n_epochs_, gan.n_steps_
    hook = _EpochHook(run_dir, n_images=len(X), checkpoint_every=s["checkpoint_every"], grid_every=s["grid_every"],
                      saved_epoch=start_epoch, step=start_step)
    started = time.perf_counter()
    previous_handler = None
    if threading.current_thread() is threading.main_thread():
        def on_sigint(signum: int, frame: Any) -> None:
            hook.interrupted = True
            raise KeyboardInterrupt

        previous_handler = signal.signal(signal.SIGINT, on_sigint)
    try:
        with disk_errors(run_dir):
            _write_json(run_dir / RUN_FILE, stored)
            _truncate_log(run_dir / LOG_FILE, start_epoch)
            (run_dir / LOG_FILE).touch()
            monitor = None
            if s["monitor_every"]:
                from .metrics import TrainingMonitor

                def log_metrics(record: dict[str, Any]) -> None:
                    line = {"epoch": record["epoch"], "step": record["step"],
                            "metrics": {k: v for k, v in record.items() if k not in ("epoch", "step")}}
                    with open(run_dir / LOG_FILE, "a", encoding="utf-8") as f:
                        f.write(json.dumps(line) + "\n")

                monitor = TrainingMonitor(X, y, random_state=int(s["seed"]), value_range=s["value_range"],
                                          on_record=log_metrics)
            gan.fit(X, y, resume=start_epoch > 0, callback=hook, monitor=monitor,
                    monitor_every=int(s["monitor_every"]), value_range=s["value_range"])
    except USER_ERRORS:
        undo()  # bad data or settings (e.g. a network too large for memory): nothing worth keeping
        raise
    except KeyboardInterrupt:
        # The weights match the last completed epoch while the callback runs and once the
        # epochs are done; then that epoch can be saved.
        done = hook.completed >= int(s["epochs"])
        if (hook.in_callback or done) and hook.saved_epoch < hook.completed and hasattr(gan, "generator_"):
            gan.save(ckpt, overwrite=True)
            hook.saved_epoch = hook.completed
        hint = f"ganaug train --resume --out {shlex.quote(str(run_dir))}"
        if hook.saved_epoch:
            click.echo(f"Interrupted after epoch {hook.saved_epoch}; resume with: {hint}", err=True)
        elif undo():
            kept = "; the run it replaced is kept" if replaced is not None else ""
            click.echo(f"Interrupted before the first epoch was saved{kept}; nothing else was written.", err=True)
        else:
            click.echo(f"Interrupted before the first epoch was saved; start again with: {hint}", err=True)
        raise click.exceptions.Exit(130) from None
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
        if replaced is not None and hook.saved_epoch:
            shutil.rmtree(replaced, ignore_errors=True)  # the new run has an epoch saved: the old one goes
    seconds = time.perf_counter() - started
    with disk_errors(run_dir):
        gan.save(ckpt, overwrite=True)
        gan.save_grid(run_dir / "samples.png", n_per_class=10, random_state=0, scale=_grid_scale(gan))
        _plot_losses(gan, run_dir / "losses.png")
    d_loss, g_loss = hook.last_losses
    return {
        "run_dir": str(run_dir),
        "checkpoint": str(ckpt),
        "samples": str(run_dir / "samples.png"),
        "losses": str(run_dir / "losses.png"),
        "log": str(run_dir / LOG_FILE),
        "data": s["data"],
        "n_images": int(len(X)),
        "classes": [str(c) for c in gan.classes_.tolist()],
        "image_shape": list(gan.image_shape_),
        "epochs": int(gan.n_epochs_),
        "resumed_from_epoch": start_epoch,
        "steps": int(gan.n_steps_),
        "seconds": round(seconds, 2),
        "d_loss": d_loss,
        "g_loss": g_loss,
        "device": str(gan.device_),
    }


def _train_text(r: dict[str, Any]) -> str:
    resumed = f", resumed from epoch {r['resumed_from_epoch']}" if r["resumed_from_epoch"] else ""
    losses = ""
    if r["d_loss"] is not None:
        losses = f"; last epoch d_loss {r['d_loss']:.3f}, g_loss {r['g_loss']:.3f}"
    c, h, w = r["image_shape"]
    return "\n".join([
        f"Trained {r['epochs']} epochs ({r['steps']} steps{resumed}) in {r['seconds']:.1f} s on {r['device']}: "
        f"{r['n_images']} images {h}x{w}x{c}, {len(r['classes'])} classes{losses}.",
        f"  checkpoint  {r['checkpoint']}",
        f"  samples     {r['samples']}",
        f"  losses      {r['losses']}",
        f"  log         {r['log']}",
    ])


def _read_config(path: Path) -> dict[str, Any]:
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
        raise ValueError(f"Config file {path} must hold a table of option names and values.")
    config = {str(k).replace("-", "_"): v for k, v in document.items()}
    allowed = set(TRAIN_DEFAULTS) | {"out"}
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise ValueError(f"Unknown keys {unknown} in config file {path}; known: {sorted(allowed)}.")
    return config


def _resolve_train_settings(
    ctx: click.Context, saved: dict[str, Any] | None, config: dict[str, Any]
) -> tuple[dict[str, Any], frozenset[str]]:
    """(settings, names given explicitly): command line > --config file > run.json of the
    run being resumed > defaults."""
    params = {p.name: p for p in ctx.command.params}
    settings, explicit = {}, set()
    for name in TRAIN_DEFAULTS:
        source = ctx.get_parameter_source(name)
        if source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT, ParameterSource.PROMPT):
            settings[name] = ctx.params[name]
            explicit.add(name)
        elif name in config:
            explicit.add(name)
            value = config[name]
            settings[name] = None if value is None else params[name].type_cast_value(ctx, value)
        elif saved is not None and name in saved:
            value = saved[name]
            settings[name] = None if value is None else params[name].type_cast_value(ctx, value)
        else:
            settings[name] = ctx.params[name]
    return settings, frozenset(explicit)


@main.command()
@click.argument("data", required=False)
@click.option("--out", "-o", type=click.Path(path_type=Path),
              help="Run directory to write (required; may come from --config).")
@click.option("--epochs", default=TRAIN_DEFAULTS["epochs"], show_default=True, type=click.IntRange(1),
              help="Epochs to train in total (on --resume: the new total).")
@click.option("--batch-size", type=click.IntRange(2), help="Default: 32 for dcgan, 256 for classic.")
@click.option("--image-size", type=_Size(), help="Resize image-folder images on load: 32 or HxW such as 28x32.")
@click.option("--channels", type=_Channels(),
              help="Read image-folder images as grey (1) or RGB (3). Default: grey if all images are.")
@click.option("--arch", type=click.Choice(["dcgan", "classic"]), default=TRAIN_DEFAULTS["arch"], show_default=True,
              help="dcgan: sized from the data; classic: the 28x28 TensorFlow DCGAN tutorial.")
@click.option("--width", type=click.IntRange(1),
              help="Channels of the outermost network block (dcgan). Default: 32, or 64 below 16 pixels.")
@click.option("--kernel-size", type=click.IntRange(2, 7),
              help="Kernel of dcgan's convolutions; odd adds a stride-1 block. Default: 4, or 5 below 16 pixels.")
@click.option("--latent-dim", default=TRAIN_DEFAULTS["latent_dim"], show_default=True, type=click.IntRange(1),
              help="Size of the noise vector z.")
@click.option("--loss", type=click.Choice(["bce", "hinge"]), default=TRAIN_DEFAULTS["loss"], show_default=True,
              help="Adversarial loss: hinge, or the classic binary cross-entropy (bce).")
@click.option("--spectral-norm/--no-spectral-norm", default=TRAIN_DEFAULTS["spectral_norm"], show_default=True,
              help="Spectral normalisation of the discriminator's layers.")
@click.option("--augment", metavar="POLICY", default=TRAIN_DEFAULTS["augment"], show_default=True,
              help="DiffAugment policy before the discriminator, comma-separated from color, translation, "
                   "cutout; 'none' turns it off.")
@click.option("--ema", type=_DecayOrNone(), default=TRAIN_DEFAULTS["ema"], show_default=True,
              help="Sample from a moving average of the generator weights with this decay; 'none' samples "
                   "from the trained generator itself.")
@_device_option
@click.option("--seed", default=TRAIN_DEFAULTS["seed"], show_default=True, type=click.IntRange(0),
              help="Seeds weights, batches and noise: the same seed gives the same run on a CPU.")
@click.option("--grid-every", default=TRAIN_DEFAULTS["grid_every"], show_default=True, type=click.IntRange(0),
              help="Write RUN_DIR/samples/epoch-NNNN.png every N epochs (0: only the final samples.png).")
@click.option("--checkpoint-every", default=TRAIN_DEFAULTS["checkpoint_every"], show_default=True,
              type=click.IntRange(1), help="Save the checkpoint every N epochs (and at the end).")
@click.option("--monitor-every", default=TRAIN_DEFAULTS["monitor_every"], show_default=True, type=click.IntRange(0),
              help="Every N steps, measure a fixed sample (class fidelity, Fréchet distance, precision, recall, "
                   "density, coverage) and log it to RUN_DIR/log.jsonl; 0 turns it off.")
@click.option("--value-range", type=_ValueRange(),
              help="Range of the data's values, LOW,HIGH (e.g. 0,65535 for 16-bit images). Default: 0,255 for "
                   "8-bit images, 0,1 for floats.")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out from its last checkpoint.")
@_force_option
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON or TOML file of option values (keys are option names); the command line wins.")
@_quiet_option
@_json_option
@click.pass_context
def train(ctx: click.Context, data: str | None, out: Path | None, resume: bool, force: bool,
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
    config = _read_config(config_file) if config_file is not None else {}
    if out is None:
        out = Path(config["out"]) if config.get("out") else None
    if out is None:
        raise click.UsageError("Missing option '--out' (the run directory).")
    saved = None
    if resume and (out / RUN_FILE).is_file():
        try:
            saved = json.loads((out / RUN_FILE).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{out / RUN_FILE} is corrupt ({exc}); pass DATA and the options again.") from exc
    settings, explicit = _resolve_train_settings(ctx, saved, config)
    result = _train(settings, out, resume=resume, force=force, progress=_progress(quiet), explicit=explicit)
    _emit(result, _train_text(result), quiet=quiet, as_json=as_json)


# --------------------------------------------------------------------------- generate


def _to_uint8(images: Any) -> Any:
    """(N, C, H, W) float tensor in [-1, 1] -> uint8 numpy, the same rounding as a uint8 model's output."""
    import numpy as np

    x = ((images.float().clamp(-1, 1) + 1) / 2 * 255.0).numpy()
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _png_mode(channels: int) -> str:
    modes = {1: "L", 3: "RGB", 4: "RGBA"}
    if channels not in modes:
        raise ValueError(f"The model makes {channels}-channel images, which PNG cannot hold; use --format npz.")
    return modes[channels]


def _safe_name(value: Any) -> str:
    name = str(value)
    if name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"Class {value!r} cannot be a folder name; use --format npz.")
    return name


def _request_counts(gan: Any, meta: dict[str, Any], *, per_class: int | None, balance: str | None,
                    pairs: list[tuple[str, int]]) -> dict[Any, int]:
    """``{model class value: count}`` in the model's class order."""
    classes = gan.classes_.tolist()
    by_name = {str(c): c for c in classes}
    if per_class is not None:
        return {c: int(per_class) for c in classes}
    if balance is not None:
        import numpy as np

        from .sampling import synthetic_counts

        _, y = _load_like_model(balance, meta)
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
    return {c: request[c] for c in classes if c in request}


def _generate(run_dir: Path, out: Path, *, per_class: int | None = None, balance: str | None = None,
              pairs: list[tuple[str, int]] = (), fmt: str = "imagefolder", seed: int = 0, batch_size: int = 512,
              device: str = "auto", force: bool = False, progress: bool = False) -> dict[str, Any]:
    """Stream generated images to ``out`` (through a temporary sibling directory)."""
    ckpt = _checkpoint_dir(run_dir)
    refuse_overlap(out, {"run directory": run_dir, "checkpoint": ckpt, "DATA": balance})
    check_output_dir(out, force=force, markers=SET_MARKERS)
    from .checkpoint import read_metadata

    meta = read_metadata(ckpt)
    if fmt == "imagefolder":
        _png_mode(int(meta["model"]["channels"]))
    _check_device(device)

    import numpy as np
    from PIL import Image
    from tqdm.auto import tqdm

    from .gan import ConditionalDCGAN

    gan = ConditionalDCGAN.load(ckpt, device=device)
    counts = _request_counts(gan, meta, per_class=per_class, balance=balance, pairs=list(pairs))
    if fmt == "imagefolder":
        names = {c: _safe_name(c) for c in counts}
        if len(set(names.values())) != len(names):
            raise ValueError("Two classes map to the same folder name; use --format npz.")
    sha = str(meta["weights"].get("sha256", ""))
    total = sum(counts.values())
    if seed + total > 2**63 - 1:
        raise ValueError(f"--seed {seed} is too large for {total} images.")
    digits = max(6, len(str(max(total - 1, 0))))

    with disk_errors(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        target = out.parent.resolve() / out.name  # out itself is not a link (checked above)
        clean_stale_partials(target)  # what a killed earlier run left
        partial = make_partial_dir(target)
    started = time.perf_counter()
    try:
        with disk_errors(out), contextlib.ExitStack() as stack:
            manifest_file = stack.enter_context(open(partial / MANIFEST, "w", newline="", encoding="utf-8"))
            bar = stack.enter_context(tqdm(total=total, unit="img", disable=not progress, dynamic_ncols=True,
                                           desc="generate"))
            manifest = csv.writer(manifest_file)
            manifest.writerow(MANIFEST_HEADER.split(","))
            if fmt == "npz":
                probe = gan.sample({gan.classes_.tolist()[0]: 0}, random_state=seed)[0]
                probe = probe.numpy() if hasattr(probe, "numpy") else np.asarray(probe)
                npz = stack.enter_context(_NpzWriter(partial / "samples.npz"))
                X_out = npz.array("X", (total,) + probe.shape[1:], probe.dtype)
                # Object labels (e.g. from a pandas column) are stored as plain values: no pickles.
                label_dtype = np.asarray(gan.classes_.tolist()).dtype
                if label_dtype == object:
                    raise ValueError("These class labels cannot be stored in an .npz without pickling; use "
                                     "--format imagefolder.")
                y_all = np.empty(total, dtype=label_dtype)
            index = 0
            for c, k in counts.items():
                if fmt == "imagefolder" and k:
                    (partial / names[c]).mkdir()
                for start in range(0, k, batch_size):
                    m = min(batch_size, k - start)
                    # One seed per image, contiguous over the request: image i has seed (--seed + i).
                    images, _, seeds = gan.sample({c: m}, random_state=seed + index, return_seeds=True,
                                                  batch_size=batch_size,
                                                  output="tensor" if fmt == "imagefolder" else "native")
                    if fmt == "imagefolder":
                        arr = _to_uint8(images)  # (m, C, H, W)
                        arr = arr[:, 0] if arr.shape[1] == 1 else arr.transpose(0, 2, 3, 1)
                        rows = []
                        for j in range(m):
                            rel = f"{names[c]}/{index + j:0{digits}d}.png"
                            Image.fromarray(arr[j]).save(partial / rel, format="PNG")
                            rows.append((rel, str(c), int(seeds[j]), sha))
                    else:
                        X_out.write(images.numpy() if hasattr(images, "numpy") else images)
                        y_all[index : index + m] = c
                        rows = [(index + j, str(c), int(seeds[j]), sha) for j in range(m)]
                    manifest.writerows(rows)
                    index += m
                    bar.update(m)
            if fmt == "npz":
                X_out.close()
                npz.save("y", y_all)
        with disk_errors(out):
            publish_dir(partial, target, force=force, markers=SET_MARKERS)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    seconds = time.perf_counter() - started
    return {
        "out": str(out),
        "format": fmt,
        "total": int(total),
        "counts": {str(c): int(k) for c, k in counts.items()},
        "seed": int(seed),
        "seconds": round(seconds, 3),
        "images_per_s": round(total / seconds, 1) if seconds > 0 else None,
        "manifest": str(out / MANIFEST),
        "model_sha256": sha,
        "checkpoint": str(ckpt),
    }


class _NpzArray(NpyStream):
    """One .npy member of an .npz being written, filled batch by batch in order."""

    def close(self) -> None:
        self.finish()
        self.file.close()


class _NpzWriter:
    """samples.npz written as a stream of .npy members (:class:`ganaug._io.NpyStream`)."""

    def __init__(self, path: Path) -> None:
        import zipfile

        self._file = open(path, "wb")
        self._zip = zipfile.ZipFile(self._file, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        self._arrays: list[_NpzArray] = []

    def __enter__(self) -> "_NpzWriter":
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self._zip.close()
            self._file.close()
            return
        # After an error (a full disk) the half-written file is deleted with its folder:
        # close every handle now, quietly, so none tries to write again when collected.
        for handle in [a.file for a in self._arrays] + [self._zip, self._file]:
            with contextlib.suppress(Exception):
                handle.close()

    def array(self, name: str, shape: tuple[int, ...], dtype: Any) -> _NpzArray:
        array = _NpzArray(self._zip.open(f"{name}.npy", "w", force_zip64=True), shape, dtype)
        self._arrays.append(array)
        return array

    def save(self, name: str, values: Any) -> None:
        member = self.array(name, tuple(values.shape), values.dtype)
        member.write(values)
        member.close()


def _generate_text(r: dict[str, Any]) -> str:
    per_class = "  ".join(f"{c}: {k}" for c, k in r["counts"].items())
    rate = f" ({r['images_per_s']:,.0f} images/s)" if r["images_per_s"] else ""
    where = r["out"] if r["format"] == "imagefolder" else str(Path(r["out"]) / "samples.npz")
    return "\n".join([
        f"Generated {r['total']:,} images in {r['seconds']:.1f} s{rate} into {where} ({r['format']}).",
        f"  per class  {per_class}",
        f"  manifest   {r['manifest']}  (file, class, seed, model_sha256)",
    ])


@main.command()
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
@_device_option
@_force_option
@_quiet_option
@_json_option
def generate(run_dir: Path, out: Path, per_class: int | None, balance: str | None, class_names: tuple[str, ...],
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
        result = _generate(run_dir, out, per_class=per_class, balance=balance, pairs=list(zip(class_names, class_ns)),
                           fmt=fmt, seed=seed, batch_size=batch_size, device=device, force=force,
                           progress=_progress(quiet))
    except KeyboardInterrupt:
        click.echo(f"Interrupted; nothing was written to {out}.", err=True)
        raise click.exceptions.Exit(130) from None
    _emit(result, _generate_text(result), quiet=quiet, as_json=as_json)


# --------------------------------------------------------------------------- evaluate


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--data", required=True, metavar="DATA", help="Real images to compare with (ideally held out).")
@click.option("--n-per-class", default=500, show_default=True, type=click.IntRange(2),
              help="Real images used per class (the rest are skipped, for speed).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0))
@click.option("--out", "-o", type=click.Path(path_type=Path),
              help="Also write report.json, samples.png, nearest.png and losses.png to this folder.")
@_device_option
@_force_option
@_quiet_option
@_json_option
def evaluate(run_dir: Path, data: str, n_per_class: int, seed: int, out: Path | None, device: str, force: bool,
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
    from .checkpoint import read_metadata

    ckpt = _checkpoint_dir(run_dir)
    meta = read_metadata(ckpt)
    if out is not None:
        refuse_overlap(out, {"run directory": run_dir, "checkpoint": ckpt, "DATA": data})
        check_output_dir(out, force=force, markers=REPORT_MARKERS)
    _check_device(device)
    X, y = _load_like_model(data, meta)
    from .gan import ConditionalDCGAN
    from .metrics import evaluate_generator, format_report

    gan = ConditionalDCGAN.load(ckpt, device=device)
    report = evaluate_generator(gan, X, y, n_per_class=n_per_class, random_state=seed)
    if out is not None:
        from .report import write_report

        with disk_errors(out):
            write_report(gan, X, y, out, report)
    text = format_report(report)
    if out is not None:
        text += f"\n\nReport written to {out}"
    _emit(report, text, quiet=quiet, as_json=as_json)


# --------------------------------------------------------------------------- info


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
        f"data format    {spec.get('dtype')} in [{lo:g}, {hi:g}], layout {spec.get('layout')}, "
        f"shape {tuple(spec.get('shape', []))}, {spec.get('container')}",
        f"model          {model.get('arch')}: latent_dim {model.get('latent_dim')}, "
        f"embed_dim {model.get('embed_dim')}, "
        f"kernel {model.get('kernel_size')}x{model.get('kernel_size')}"
        + (" with a stride-1 block" if model.get("base_block", True) else "")
        + f", generator widths {model.get('g_widths')}, discriminator widths {model.get('d_widths')}"
        + (", spectral norm" if model.get("spectral_norm") else "")
        + (f", dropout {model['dropout']:g}" if model.get("dropout") else "")
        + (", minibatch std" if model.get("minibatch_std") else ""),
        f"training       {training.get('epoch')}/{training.get('max_epochs')} epochs, {training.get('step')} steps, "
        f"batch {training.get('batch_size')}, lr_g {training.get('lr_g')}, lr_d {training.get('lr_d')}, "
        f"betas {tuple(training.get('betas', []))}, loss {training.get('loss')}, augment {training.get('augment')}, "
        f"ema {training.get('ema')}, seed {params.get('random_state')}",
        f"classifier     {'yes' if meta.get('classifier') else 'no'} (domain classifier for metrics and filtering)",
        f"versions       ganaug {meta.get('ganaug_version')}, torch {meta.get('torch_version')}",
        f"weights        {meta['weights'].get('file')}  sha256 {meta['weights'].get('sha256')}",
    ]
    if run is not None:
        lines.append(f"trained on     {run.get('data')}")
    return "\n".join(lines)


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@_json_option
def info(run_dir: Path, as_json: bool) -> None:
    """Show what the checkpoint in RUN_DIR holds, without loading the model.

    Classes and their training counts, image shape, the data's dtype, range and layout,
    the model and training settings, and the versions that wrote it.

    \b
    Example:
      ganaug info runs/pets
      ganaug info runs/pets --json | python -c "import json,sys; print(json.load(sys.stdin)['data']['classes'])"
    """
    from .checkpoint import read_metadata

    ckpt = _checkpoint_dir(run_dir)
    meta = read_metadata(ckpt)
    if as_json:
        click.echo(json.dumps(meta, indent=2))
        return
    run = None
    if (run_dir / RUN_FILE).is_file():
        try:
            run = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            run = None
    click.echo(_info_text(ckpt, meta, run))


# --------------------------------------------------------------------------- demo


@main.command()
@click.option("--out", "-o", default="runs/demo", show_default=True, type=click.Path(path_type=Path))
@click.option("--epochs", default=30, show_default=True, type=click.IntRange(1))
@click.option("--per-class", default=100, show_default=True, type=click.IntRange(0),
              help="Synthetic images per class in the augmentation set.")
@_device_option
@_force_option
@_quiet_option
@_json_option
def demo(out: Path, epochs: int, per_class: int, device: str, force: bool, quiet: bool, as_json: bool) -> None:
    """Train on scikit-learn's 8x8 digits, then write a sample grid and an augmentation set.

    The same as `ganaug train digits --out OUT/run` followed by
    `ganaug generate OUT/run --out OUT/augmented --per-class 100` (about 35 s on 2 CPU cores).

    \b
    Example:
      ganaug demo
      ganaug demo --out /tmp/demo --epochs 5 --force
    """
    # --force replaces the two folders the demo writes, each only if ganaug wrote it; anything
    # else in OUT is left alone.
    if not force or out.is_symlink():
        check_output_dir(out, force=False)
    for part, markers in ((out / "run", RUN_MARKERS), (out / "augmented", SET_MARKERS)):
        check_output_dir(part, force=force, markers=markers)
    progress = _progress(quiet)
    settings = {**TRAIN_DEFAULTS, "data": "digits", "epochs": epochs, "device": device}
    trained = _train(settings, out / "run", resume=False, force=force, progress=progress)
    generated = _generate(out / "run", out / "augmented", per_class=per_class, device=device, force=force,
                          progress=progress)
    summary = {"train": trained, "generate": generated}
    text = "\n".join([
        f"Trained on the digits ({trained['n_images']} images 8x8, {len(trained['classes'])} classes) for "
        f"{trained['epochs']} epochs in {trained['seconds']:.1f} s; wrote {generated['total']:,} synthetic images "
        f"({per_class} per class) in {generated['seconds']:.1f} s.",
        f"  sample grid       {trained['samples']}",
        f"  loss curve        {trained['losses']}",
        f"  checkpoint        {trained['checkpoint']}",
        f"  augmentation set  {generated['out']}  (ImageFolder layout, manifest.csv)",
        f"Next: ganaug info {out / 'run'}   |   ganaug evaluate {out / 'run'} --data digits",
    ])
    _emit(summary, text, quiet=quiet, as_json=as_json)
