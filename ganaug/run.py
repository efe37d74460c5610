"""A training run on disk: settings, log, checkpoints, grids, interruption and resume.

:func:`train_run` trains a :class:`ganaug.ConditionalDCGAN` into a run directory::

    RUN_DIR/run.json               the settings (so a resume needs only the directory)
    RUN_DIR/checkpoint/            ConditionalDCGAN.save(), every ``checkpoint_every`` epochs
    RUN_DIR/log.jsonl              one JSON line per epoch: losses, seconds, images/s; and
                                   every ``monitor_every`` steps a line {"epoch", "step",
                                   "metrics": class fidelity, FD, precision, recall, ...}
    RUN_DIR/samples/epoch-0005.png a grid (one row per class) every ``grid_every`` epochs
    RUN_DIR/samples.png            the final grid
    RUN_DIR/losses.png             discriminator and generator loss per step

A resumed run continues from the checkpoint bit-identically (same seed stream); log lines
of epochs after the checkpoint (written before a kill) are dropped and rewritten, so
log.jsonl always holds each epoch once, in order. Ctrl-C saves the last completed epoch
and raises :class:`TrainingInterrupted`, which says how to resume.

Under torchrun every rank trains (ganaug.distributed) and reads the run directory, and
rank 0 alone writes it: run.json, the log, checkpoints, grids and the progress bar.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._io import (
    USER_ERRORS,
    atomic_write_bytes,
    check_output_dir,
    clean_stale_partials,
    disk_errors,
    ganaug_marker,
    is_builtin_source,
    non_empty_dir,
    refuse_overlap,
    set_aside,
)
from ._version import __version__
from .params import PARAMETERS

# torch and the model are imported inside the functions that use them, so that the command
# line can read TRAIN_DEFAULTS (its options' defaults) without paying for torch in --help.
if TYPE_CHECKING:
    from .gan import ConditionalDCGAN

__all__ = ["CHECKPOINT_DIR", "LOG_FILE", "RUN_FILE", "RUN_MARKERS", "TRAIN_DEFAULTS", "EpochHook",
           "TrainingInterrupted", "checkpoint_path", "read_settings", "train_run", "truncate_log"]

# A run's settings: the keys of run.json and their defaults. Every estimator parameter is
# one (ganaug.params declares it), under the name users know from the command line, except
# verbose (the progress bar follows `progress`); the others say what the run reads and writes.
SETTING_NAMES = {"max_epochs": "epochs", "random_state": "seed"}  # estimator parameter -> setting
ESTIMATOR_SETTINGS = {SETTING_NAMES.get(name, name): name for name in PARAMETERS if name != "verbose"}
RUN_ONLY_DEFAULTS: dict[str, Any] = {
    "data": None, "image_size": None, "channels": None, "value_range": None,  # how the data is read
    "grid_every": 5, "checkpoint_every": 1, "monitor_every": 200,  # what the run writes, how often
}
TRAIN_DEFAULTS: dict[str, Any] = {
    **RUN_ONLY_DEFAULTS,
    **{setting: PARAMETERS[name].default for setting, name in ESTIMATOR_SETTINGS.items()},
    "seed": 0,  # not the estimator's None: a run is reproducible and resumable by default
}
# Settings that define the model or its training stream; a resumed run must keep them.
# (The optimisers' learning rates and betas are in the checkpoint's optimiser state.)
_FIXED_ON_RESUME = ("arch", "latent_dim", "embed_dim", "width", "kernel_size", "batch_size", "lr_g", "lr_d", "betas",
                    "loss", "spectral_norm", "dropout", "minibatch_std", "augment", "ema", "seed")
RUN_FILE = "run.json"
LOG_FILE = "log.jsonl"
CHECKPOINT_DIR = "checkpoint"
# The marker of a run directory: force=True replaces only a folder that holds ganaug's run.json.
RUN_MARKERS = (RUN_FILE,)
# What a run writes; none of them may be a link out of the run directory.
_RUN_ENTRIES = (RUN_FILE, LOG_FILE, CHECKPOINT_DIR, "samples", "samples.png", "losses.png")


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`train_run`; the message says what was kept and how to resume."""

    def __init__(self, message: str, saved_epoch: int) -> None:
        super().__init__(message)
        self.saved_epoch = saved_epoch  # the epoch of the checkpoint on disk (0: none)


def checkpoint_path(run_dir: str | os.PathLike) -> Path:
    """RUN_DIR/checkpoint, or RUN_DIR itself when it is a checkpoint directory."""
    from .checkpoint import is_checkpoint

    run_dir = Path(run_dir)
    if is_checkpoint(run_dir) and not (run_dir / CHECKPOINT_DIR).is_dir():
        return run_dir
    return run_dir / CHECKPOINT_DIR


def read_settings(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The settings in RUN_DIR/run.json, or None when there is none; a corrupt one is a ValueError."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is corrupt ({exc}); pass DATA and the options again.") from exc


def truncate_log(path: str | os.PathLike, last_epoch: int) -> None:
    """Keep the log lines of epochs 1..last_epoch: a resumed run rewrites the later ones."""
    path = Path(path)
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if int(json.loads(line)["epoch"]) <= last_epoch:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line of a killed run
    atomic_write_bytes(path, "".join(line + "\n" for line in kept).encode("utf-8"))


def _append_line(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _save_grid(gan: ConditionalDCGAN, path: Path) -> None:
    from .grid import grid_scale

    gan.save_grid(path, n_per_class=10, random_state=0, scale=grid_scale(gan.image_shape_))


class EpochHook:
    """fit's callback: log line, checkpoint and grid after each epoch; knows what is on disk.

    ``saved_epoch`` is the epoch of the checkpoint on disk (0: none), ``step`` the step
    count it was saved at. Set ``interrupted`` (as the SIGINT handler of :func:`train_run`
    does) to stop training after the current epoch is saved.
    """

    def __init__(self, run_dir: str | os.PathLike, *, n_images: int, checkpoint_every: int, grid_every: int,
                 saved_epoch: int, step: int) -> None:
        self.run_dir = Path(run_dir)
        self.n_images = n_images
        self.checkpoint_every = max(1, int(checkpoint_every))
        self.grid_every = int(grid_every or 0)
        self.saved_epoch = saved_epoch
        self.completed = saved_epoch
        self.last_step = step
        self.in_callback = False
        self.interrupted = False
        self.last_losses: tuple[float | None, float | None] = (None, None)
        self.started = self.last_time = time.perf_counter()
        from .distributed import is_main

        self.writes = is_main()  # rank 0 of a distributed job; the others only keep count

    def __call__(self, gan: ConditionalDCGAN, state: Any) -> None:
        self.in_callback = True  # the weights are those of a completed epoch until we return
        self.completed = state.epoch
        seconds = time.perf_counter() - self.last_time
        steps = state.step - self.last_step
        mean = lambda key: (sum(state.history[key][-steps:]) / steps) if steps else None
        batch = min(gan.train_config_.batch_size, self.n_images)
        record = {
            "epoch": state.epoch, "step": state.step, "d_loss": mean("d_loss"), "g_loss": mean("g_loss"),
            "d_real": mean("d_real"), "d_fake": mean("d_fake"), "seconds": round(seconds, 4),
            "images_per_s": round(steps * batch / seconds, 1) if seconds > 0 else None,
        }
        self.last_losses = (record["d_loss"], record["g_loss"])
        # The log line goes first: a kill before the checkpoint leaves a line that a resume rewrites.
        if self.writes:
            _append_line(self.run_dir / LOG_FILE, record)
        if state.epoch % self.checkpoint_every == 0 or state.epoch >= gan.max_epochs:
            if self.writes:
                gan.save(self.run_dir / CHECKPOINT_DIR, overwrite=True)
            self.saved_epoch = state.epoch
        if self.writes and self.grid_every and state.epoch % self.grid_every == 0:
            (self.run_dir / "samples").mkdir(exist_ok=True)
            _save_grid(gan, self.run_dir / "samples" / f"epoch-{state.epoch:04d}.png")
        self.last_step = state.step
        self.last_time = time.perf_counter()
        if self.interrupted:
            # Ctrl-C came, but its KeyboardInterrupt was lost: Python drops exceptions raised
            # inside finalisers (__del__, weakref callbacks). Stop here, after a full epoch.
            raise KeyboardInterrupt
        self.in_callback = False


@dataclass
class _Workspace:
    """The run directory as prepared for training, and how to undo a fresh run that saved nothing."""

    run_dir: Path
    fresh: bool  # a new model (not a resume)
    created: bool  # the directory did not exist before
    replaced: Path | None  # the run that a fresh run with force replaces, set aside until an epoch is saved
    writes: bool = True  # False on the ranks of a distributed job other than rank 0

    def undo(self, hook: EpochHook) -> bool:
        """Remove a fresh run that saved no epoch, and bring back the run it replaced."""
        if not self.fresh or hook.saved_epoch or not self.writes:
            return False
        if self.created:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        else:
            for name in (RUN_FILE, LOG_FILE):
                (self.run_dir / name).unlink(missing_ok=True)
        if self.replaced is not None:
            os.replace(self.replaced, self.run_dir)
        return True


def train_run(settings: dict[str, Any], run_dir: str | os.PathLike, *, resume: bool = False, force: bool = False,
              progress: bool = True) -> dict[str, Any]:
    """Train a ConditionalDCGAN into ``run_dir`` (or continue the run there).

    Parameters
    ----------
    settings : dict
        The run's settings, keys of :data:`TRAIN_DEFAULTS` (``data`` is a source for
        :func:`ganaug.data.load_source`). Those not given come, on a resume, from the run's
        run.json, else from :data:`TRAIN_DEFAULTS`.
    run_dir : path
        The run directory; see the module docstring for what it holds.
    resume : bool, default=False
        Continue the run in ``run_dir`` from its checkpoint, to ``epochs`` in total. Given
        settings that define the model or its training stream must match the checkpoint's.
    force : bool, default=False
        Start afresh in a ``run_dir`` that holds a run ganaug wrote (never another folder).
    progress : bool, default=True
        Show a progress bar on stderr.

    Returns
    -------
    dict
        Paths (run_dir, checkpoint, samples, losses, log), the data, n_images, classes,
        image_shape, epochs, resumed_from_epoch, steps, seconds, the last epoch's mean
        d_loss and g_loss, and the device.

    Raises
    ------
    TrainingInterrupted
        On Ctrl-C, after saving the last completed epoch where it can.

    Example
    -------
    >>> train_run({"data": "digits", "epochs": 5}, "runs/digits")  # doctest: +SKIP
    >>> train_run({"epochs": 10}, "runs/digits", resume=True)  # doctest: +SKIP
    """
    from .checkpoint import is_checkpoint
    from .distributed import all_ranks_succeed, check_same, context
    from .gan import resolve_device

    job, run_dir = context(), Path(run_dir)
    progress = progress and job.is_main
    s, explicit = _merge_settings(settings, run_dir, resume)
    _check_run_dir(run_dir, s["data"], resume=resume, force=force)
    resolve_device(s["device"])
    X, y = _load_training_data(s["data"], image_size=s["image_size"], channels=s["channels"])
    ckpt = run_dir / CHECKPOINT_DIR
    gan = _resumed_model(ckpt, s, explicit, progress) if resume and is_checkpoint(ckpt) else None
    # Every rank has read the directory, and found the same run, before rank 0 changes it.
    check_same(f"resume from epoch {gan.n_epochs_ if gan is not None else 0}", "run found in the run directory "
               "(put it on a file system every node sees)")
    space = _prepare(run_dir, fresh=gan is None, force=force) if job.is_main else \
        _Workspace(run_dir, fresh=gan is None, created=False, replaced=None, writes=False)
    if gan is None:
        gan = _new_model(s, progress)
    start_epoch, start_step = (gan.n_epochs_, gan.n_steps_) if not space.fresh else (0, 0)
    hook = EpochHook(run_dir, n_images=len(X), checkpoint_every=s["checkpoint_every"], grid_every=s["grid_every"],
                     saved_epoch=start_epoch, step=start_step)
    started = time.perf_counter()
    _fit(gan, X, y, s, space, hook, start_epoch)
    seconds = time.perf_counter() - started
    with all_ranks_succeed("saving the run"):  # every rank returns once the files are there, or fails
        if job.is_main:
            with disk_errors(run_dir):
                gan.save(ckpt, overwrite=True)
                _save_grid(gan, run_dir / "samples.png")
                from .report import plot_losses

                plot_losses(gan.history_, run_dir / "losses.png")
    d_loss, g_loss = hook.last_losses
    return {
        "run_dir": str(run_dir), "checkpoint": str(ckpt), "samples": str(run_dir / "samples.png"),
        "losses": str(run_dir / "losses.png"), "log": str(run_dir / LOG_FILE), "data": s["data"],
        "n_images": len(X), "classes": [str(c) for c in gan.classes_.tolist()],
        "image_shape": list(gan.image_shape_), "epochs": int(gan.n_epochs_), "resumed_from_epoch": start_epoch,
        "steps": int(gan.n_steps_), "seconds": round(seconds, 2), "d_loss": d_loss, "g_loss": g_loss,
        "device": str(gan.device_), "processes": job.world_size,
    }


def _merge_settings(settings: dict[str, Any], run_dir: Path, resume: bool) -> tuple[dict[str, Any], frozenset[str]]:
    """(all settings, the names given): given > run.json of the run being resumed > defaults."""
    unknown = sorted(set(settings) - set(TRAIN_DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown settings {unknown}; known: {sorted(TRAIN_DEFAULTS)}.")
    saved = (read_settings(run_dir) or {}) if resume else {}
    # JSON has no tuples: sizes and ranges come back from run.json as lists.
    saved = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in TRAIN_DEFAULTS}
    s = {**TRAIN_DEFAULTS, **saved, **settings}
    if s["data"] is None:
        raise ValueError("No data: give settings['data'] (needed unless a resume finds RUN_DIR/run.json).")
    return s, frozenset(settings)


def _check_run_dir(run_dir: Path, data: Any, *, resume: bool, force: bool) -> None:
    """Refuse a run directory that this run must not write (see ganaug._io.check_output_dir)."""
    from .checkpoint import is_checkpoint

    refuse_overlap(run_dir, {"DATA": data})
    if non_empty_dir(run_dir) and resume:
        if run_dir.is_symlink():
            check_output_dir(run_dir, force=True, what="Run directory")  # refuses the link in one line
        if not (ganaug_marker(run_dir, RUN_MARKERS) or is_checkpoint(run_dir / CHECKPOINT_DIR)):
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
    for name in _RUN_ENTRIES:
        if (run_dir / name).is_symlink():
            raise FileExistsError(
                f"{run_dir / name} is a symbolic link; ganaug does not write through links out of the run directory."
            )


def _load_training_data(source: str, *, image_size: Any = None, channels: int | None = None) -> tuple[Any, Any]:
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


def _resumed_model(ckpt: Path, s: dict[str, Any], explicit: frozenset[str], progress: bool) -> ConditionalDCGAN:
    """The checkpoint's model, set to train on to ``s["epochs"]``; ``s`` takes its fixed settings."""
    from .gan import ConditionalDCGAN

    gan = ConditionalDCGAN.load(ckpt, device=s["device"])
    params = gan.get_params()
    for key, param in ((key, ESTIMATOR_SETTINGS[key]) for key in _FIXED_ON_RESUME):
        if key in explicit and s[key] is not None and s[key] != params[param]:
            raise ValueError(
                f"Cannot resume with --{key.replace('_', '-')} {s[key]}: the run in {ckpt.parent} was trained "
                f"with {params[param]}. Drop the option, or start a new run with --force."
            )
        s[key] = params[param]  # what the checkpoint was trained with is what continues
    gan.set_params(max_epochs=int(s["epochs"]), max_time=s["max_time"], train_classifier=s["train_classifier"],
                   sync_batchnorm=bool(s["sync_batchnorm"]), verbose=progress)
    return gan


def _new_model(s: dict[str, Any], progress: bool) -> ConditionalDCGAN:
    from .gan import ConditionalDCGAN

    params = {name: s[setting] for setting, name in ESTIMATOR_SETTINGS.items()}
    if isinstance(params["augment"], str) and params["augment"].lower() in ("none", ""):
        params["augment"] = None
    if params["betas"] is not None:
        params["betas"] = tuple(params["betas"])
    return ConditionalDCGAN(**params, verbose=progress)


def _prepare(run_dir: Path, *, fresh: bool, force: bool) -> _Workspace:
    """Make the run directory. A fresh run that fails before its first checkpoint leaves what was
    there before: a run replaced with ``force`` is only set aside (RUN.old-PID) until then."""
    from .checkpoint import is_checkpoint

    replaced = None
    with disk_errors(run_dir):
        if is_checkpoint(run_dir / CHECKPOINT_DIR):
            # A run replaced by a forced run that was killed after saving an epoch. (Killed
            # before that, the set-aside run is all there is: it stays, as RUN.old-PID.)
            clean_stale_partials(run_dir)
        if fresh and force and non_empty_dir(run_dir):
            replaced = set_aside(run_dir)
        created = not run_dir.exists()
        run_dir.mkdir(parents=True, exist_ok=True)
    return _Workspace(run_dir, fresh=fresh, created=created, replaced=replaced)


def _stored_settings(s: dict[str, Any]) -> dict[str, Any]:
    """run.json: the settings, with a data path made absolute so a resume works from anywhere."""
    stored = dict(s)
    path = Path(str(s["data"]))
    # A built-in data set's name is kept as given, like a path that does not exist (yet).
    stored["data"] = str(path.resolve()) if path.exists() and not is_builtin_source(s["data"]) else s["data"]
    stored["ganaug_version"] = __version__
    return stored


def _monitor(X: Any, y: Any, s: dict[str, Any], log: Path) -> Any:
    """The TrainingMonitor that writes its measurements into the log, or None when off (and
    on the ranks other than 0, which write no log)."""
    from .distributed import is_main

    if not s["monitor_every"] or not s["train_classifier"] or not is_main():
        return None  # the monitor measures with the domain classifier
    from .metrics import TrainingMonitor

    def log_metrics(record: dict[str, Any]) -> None:
        _append_line(log, {"epoch": record["epoch"], "step": record["step"],
                           "metrics": {k: v for k, v in record.items() if k not in ("epoch", "step")}})

    return TrainingMonitor(X, y, random_state=int(s["seed"]), value_range=s["value_range"], on_record=log_metrics)


def _fit(gan: ConditionalDCGAN, X: Any, y: Any, s: dict[str, Any], space: _Workspace, hook: EpochHook,
         start_epoch: int) -> None:
    """Write run.json and the log, and fit with the hook; Ctrl-C saves what it can."""
    run_dir, log = space.run_dir, space.run_dir / LOG_FILE
    previous_handler = None
    if threading.current_thread() is threading.main_thread():
        def on_sigint(signum: int, frame: Any) -> None:
            hook.interrupted = True
            raise KeyboardInterrupt

        previous_handler = signal.signal(signal.SIGINT, on_sigint)
    try:
        with disk_errors(run_dir):
            if space.writes:
                atomic_write_bytes(run_dir / RUN_FILE,
                                   (json.dumps(_stored_settings(s), indent=2, default=str) + "\n").encode("utf-8"))
                truncate_log(log, start_epoch)
                log.touch()
            gan.fit(X, y, resume=start_epoch > 0, callback=hook, monitor=_monitor(X, y, s, log),
                    monitor_every=int(s["monitor_every"]), value_range=s["value_range"])
    except USER_ERRORS:
        space.undo(hook)
        raise
    except KeyboardInterrupt:
        raise _interrupted(gan, s, space, hook) from None
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
        if space.replaced is not None and hook.saved_epoch:
            shutil.rmtree(space.replaced, ignore_errors=True)  # the new run has an epoch saved: the old one goes


def _interrupted(gan: ConditionalDCGAN, s: dict[str, Any], space: _Workspace, hook: EpochHook) -> TrainingInterrupted:
    """Save the last completed epoch if the weights are its, and say what is left."""
    # The weights match the last completed epoch while the callback runs and once the
    # epochs are done; then that epoch can be saved.
    done = hook.completed >= int(s["epochs"])
    if (hook.in_callback or done) and hook.saved_epoch < hook.completed and hasattr(gan, "generator_"):
        if space.writes:
            gan.save(space.run_dir / CHECKPOINT_DIR, overwrite=True)
        hook.saved_epoch = hook.completed
    hint = f"ganaug train --resume --out {shlex.quote(str(space.run_dir))}"
    if not space.writes:
        message = "Interrupted; rank 0 of the job says what was saved and how to resume."
    elif hook.saved_epoch:
        message = f"Interrupted after epoch {hook.saved_epoch}; resume with: {hint}"
    elif space.undo(hook):
        kept = "; the run it replaced is kept" if space.replaced is not None else ""
        message = f"Interrupted before the first epoch was saved{kept}; nothing else was written."
    else:
        message = f"Interrupted before the first epoch was saved; start again with: {hint}"
    return TrainingInterrupted(message, hook.saved_epoch)
