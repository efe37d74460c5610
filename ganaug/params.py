"""ConditionalDCGAN's parameters, declared once.

Each parameter has one entry in :data:`PARAMETERS`: its default, its allowed values (as
scikit-learn ``_parameter_constraints``) and a one-line meaning. The estimator validates
with these constraints, :class:`ganaug.sklearn.GANOverSampler` accepts the same
parameters, and ``ganaug train`` builds its options and ``--set NAME=VALUE`` from them.
Defaults that depend on the architecture are in :data:`ARCH_DEFAULTS`; those that depend
on the image size (``width``, ``kernel_size``, ``dropout``) are computed by
:func:`ganaug.models.model_config`.
"""

from __future__ import annotations

import ast
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sklearn.utils._param_validation import Interval, StrOptions

from .augment import check_policy
from .losses import LOSSES
from .models import ARCHITECTURES

__all__ = ["ARCH_DEFAULTS", "PARAMETERS", "Parameter", "check_values", "parameter_constraints", "parse_setting",
           "parse_settings", "resolve"]


@dataclass(frozen=True)
class Parameter:
    """One estimator parameter: ``default``, allowed values (sklearn constraints), meaning."""

    default: Any
    constraints: list
    help: str


def _positive_int(low: int = 1) -> Interval:
    return Interval(numbers.Integral, low, None, closed="left")


_RATE = Interval(numbers.Real, 0, None, closed="neither")

PARAMETERS: dict[str, Parameter] = {
    "arch": Parameter("dcgan", [StrOptions(set(ARCHITECTURES))],
                      "dcgan: sized from the data; classic: the 28x28 TensorFlow DCGAN tutorial."),
    "latent_dim": Parameter(100, [_positive_int()], "Size of the noise vector z."),
    "embed_dim": Parameter(10, [_positive_int()], "Size of the generator's learned class code."),
    "width": Parameter(None, [_positive_int(), None],
                       "Channels of the outermost network block (dcgan). Default: 32, or 64 below 16 pixels."),
    "kernel_size": Parameter(None, [Interval(numbers.Integral, 2, 7, closed="both"), None],
                             "Kernel of dcgan's convolutions; odd adds a stride-1 block. Default: 4, or 5 below 16 "
                             "pixels."),
    "max_epochs": Parameter(50, [_positive_int()], "Passes over the training data."),
    "batch_size": Parameter(None, [_positive_int(2), None], "Default: 32 for dcgan, 256 for classic."),
    "lr_g": Parameter(None, [_RATE, None], "Generator learning rate. Default: 6e-4 for dcgan, 1e-4 for classic."),
    "lr_d": Parameter(None, [_RATE, None],
                      "Discriminator learning rate. Default: 1.2e-3 for dcgan, 1e-4 for classic."),
    "betas": Parameter(None, [tuple, list, None],
                       "Adam betas B1,B2. Default: 0,0.9 for dcgan, 0.9,0.999 for classic."),
    "loss": Parameter("hinge", [StrOptions(set(LOSSES))],
                      "Adversarial loss: hinge, or the classic binary cross-entropy (bce)."),
    "spectral_norm": Parameter(True, ["boolean"], "Spectral normalisation of the discriminator's layers."),
    "dropout": Parameter(None, [Interval(numbers.Real, 0, 1, closed="left"), None],
                         "Dropout after each discriminator block. Default: 0 for dcgan, 0.3 for classic."),
    "minibatch_std": Parameter(False, ["boolean"], "Minibatch standard-deviation layer in the discriminator."),
    "augment": Parameter("translation", [str, None],
                         "DiffAugment policy before the discriminator, comma-separated from color, translation, "
                         "cutout; 'none' turns it off."),
    "ema": Parameter(0.999, [Interval(numbers.Real, 0, 1, closed="neither"), None],
                     "Sample from a moving average of the generator weights with this decay; 'none' samples from "
                     "the trained generator itself."),
    "max_time": Parameter(None, [_RATE, None],
                          "Training time budget in seconds; training stops after the epoch that exceeds it."),
    "train_classifier": Parameter(True, ["boolean"],
                                  "Fit the domain classifier that filtering, the metrics and the monitor use."),
    "device": Parameter("auto", [str], "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps."),
    "random_state": Parameter(None, ["random_state"], "Seeds weights, batches, noise and sampling."),
    "verbose": Parameter(True, ["boolean"], "Show a progress bar with the current losses."),
}

# Optimisation defaults per architecture: "classic" is the TensorFlow tutorial's; "dcgan"
# uses three times Radford et al.'s lr 2e-4 for G and twice that for D (two time-scales),
# SNGAN's betas (0, 0.9) and batch 32, chosen by benchmarks/ablation.py and
# benchmarks/mnist_quality.py (docs/measurements.md).
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "classic": {"lr_g": 1e-4, "lr_d": 1e-4, "betas": (0.9, 0.999), "batch_size": 256},
    "dcgan": {"lr_g": 6e-4, "lr_d": 1.2e-3, "betas": (0.0, 0.9), "batch_size": 32},
}


def parameter_constraints(names: Any = None) -> dict[str, list]:
    """``_parameter_constraints`` entries of ``names`` (default: all parameters)."""
    return {name: PARAMETERS[name].constraints for name in (PARAMETERS if names is None else names)}


def check_values(params: Mapping[str, Any]) -> None:
    """Checks that sklearn's constraints cannot express: no bools for numbers, the augment policy, betas."""
    for name, value in params.items():
        if isinstance(value, bool) and name in PARAMETERS and "boolean" not in PARAMETERS[name].constraints:
            raise ValueError(f"{name} must be a number, not {value!r}.")
    check_policy(params.get("augment"))
    betas = params.get("betas")
    if betas is not None and (len(betas) != 2 or not all(
            isinstance(b, numbers.Real) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)):
        raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}.")


def resolve(params: Mapping[str, Any], name: str) -> Any:
    """The value of ``name`` that training uses: the given one, else the architecture's default."""
    value = params.get(name)
    return ARCH_DEFAULTS[params["arch"]][name] if value is None else value


def parse_setting(item: str) -> tuple[str, Any]:
    """``"ema=None"`` -> ``("ema", None)``, the value checked against the parameter's constraints.

    Values are Python literals; a bare word stays a string, ``none``/``None`` is None.

    >>> parse_setting("betas=(0.5, 0.999)")
    ('betas', (0.5, 0.999))
    """
    from sklearn.utils._param_validation import validate_parameter_constraints

    name, sep, text = item.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or name not in PARAMETERS:
        raise ValueError(f"Setting {item!r} is not NAME=VALUE with NAME one of {sorted(PARAMETERS)}.")
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        value = None if text.strip().lower() == "none" else text.strip()
    validate_parameter_constraints({name: PARAMETERS[name].constraints}, {name: value}, caller_name="--set")
    check_values({name: value})
    return name, value


def parse_settings(items: list[str]) -> dict[str, Any]:
    """Several ``NAME=VALUE`` settings (e.g. repeated ``--set`` options) -> keyword arguments.

    >>> parse_settings(["ema=None", "loss=bce"])
    {'ema': None, 'loss': 'bce'}
    """
    return dict(parse_setting(item) for item in items)
