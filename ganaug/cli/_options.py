"""What the commands share: parameter types, options defined once, output, data loading."""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable
from typing import Any

import click


class Size(click.ParamType):
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


class DecayOrNone(click.ParamType):
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


class NumberOrNone(click.ParamType):
    """A number within an estimator parameter's range (:class:`ganaug.params.Parameter`), or ``none``."""

    name = "NUMBER|none"

    def __init__(self, low: float | None, high: float | None, open: str) -> None:
        self.range = click.FloatRange(low, high, min_open=open in ("low", "both"), max_open=open in ("high", "both"))

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None or str(value).strip().lower() == "none":
            return None
        return self.range.convert(value, param, ctx)


class Pair(click.ParamType):
    """``A,B``: two numbers, e.g. Adam's betas 0.5,0.999."""

    name = "A,B"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None or str(value).strip().lower() == "none":
            return None
        parts = value if isinstance(value, (list, tuple)) else str(value).split(",")
        try:
            first, second = (float(v) for v in parts)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not two numbers A,B such as 0.5,0.999.", param, ctx)
        return (first, second)


class ValueRange(click.ParamType):
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


class Channels(click.ParamType):
    """1 (grey) or 3 (RGB)."""

    name = "1|3"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:
            return None
        if str(value).strip() not in ("1", "3"):
            self.fail(f"{value!r} is not 1 (grey) or 3 (RGB).", param, ctx)
        return int(str(value).strip())


# --------------------------------------------------------------------------- shared options


def quiet_option(f: Callable) -> Callable:
    return click.option("--quiet", "-q", is_flag=True, help="No progress bars and no summary text.")(f)


def json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")(f)


def force_option(f: Callable) -> Callable:
    return click.option("--force", is_flag=True,
                        help="Replace an existing output directory that ganaug wrote (never another folder).")(f)


DEVICE_HELP = "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps."


def device_option(f: Callable) -> Callable:
    return click.option("--device", default="auto", show_default=True, metavar="DEVICE", help=DEVICE_HELP)(f)


def check_device(device: str) -> Any:
    """The torch.device for ``device``, or a ValueError in command-line words."""
    from ..gan import DeviceError, resolve_device

    try:
        return resolve_device(device)
    except DeviceError as exc:
        if exc.unknown:
            raise ValueError(f"Unknown device {device!r}; use --device auto, cpu, cuda, cuda:N or mps.") from None
        raise ValueError(
            f"Device {device!r} is not available on this machine; use --device cpu or --device auto."
        ) from exc


# --------------------------------------------------------------------------- output


def show_progress(quiet: bool) -> bool:
    """Progress bars only for a person watching a terminal."""
    return not quiet and sys.stderr.isatty()


def emit(summary: dict[str, Any], text: str, *, quiet: bool, as_json: bool) -> None:
    """Print ``summary`` as JSON (``--json``) or ``text`` (unless ``--quiet``); under torchrun, on rank 0 only."""
    from ..distributed import is_main

    if not is_main():
        return
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
    elif not quiet:
        click.echo(text)


# --------------------------------------------------------------------------- inputs


def load_like_model(source: str, meta: dict[str, Any]) -> tuple[Any, Any]:
    """Load real data for a model: image folders are read at the model's image size and channels."""
    from ..data import load_source

    model = meta["model"]
    kwargs: dict[str, Any] = {"image_size": (model["height"], model["width"])}
    if model["channels"] in (1, 3):
        kwargs["channels"] = model["channels"]
    return load_source(source, **kwargs)  # the options apply to image folders only
