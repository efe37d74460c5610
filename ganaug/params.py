"""ConditionalDCGAN's parameters, declared once.

Each parameter has one entry in :data:`PARAMETERS`: its default, the values it allows and
a one-line meaning. From it come the estimator's scikit-learn ``_parameter_constraints``,
the parameters :class:`ganaug.sklearn.GANOverSampler` accepts, the options of
``ganaug train`` and the ``NAME=VALUE`` settings of :func:`parse_setting`. Defaults that
of the optimiser depend on the architecture and are in :data:`ARCH_DEFAULTS`; those of the
networks (``width`` and ``kernel_size`` from the image size, ``dropout`` from the
architecture) are computed by :func:`ganaug.models.model_config`.

This module imports neither torch nor scikit-learn at import time, so that the command
line's ``--help`` stays instant.
"""

from __future__ import annotations

import ast
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ARCH_DEFAULTS", "PARAMETERS", "Parameter", "check_values", "parameter_constraints", "parse_setting",
           "parse_settings", "resolve"]


@dataclass(frozen=True)
class Parameter:
    """One estimator parameter: its default, allowed values and meaning.

    ``kind`` is one of ``int``, ``float`` (within ``low``..``high``; ``open`` names the
    excluded ends: ``"low"``, ``"high"`` or ``"both"``), ``bool``, ``choice`` (one of
    ``choices``), ``text``, ``pair`` (two numbers), ``seed`` (scikit-learn's
    random_state) or ``device``. ``nullable``: None is allowed too.
    """

    default: Any
    kind: str
    help: str
    low: float | None = None
    high: float | None = None
    open: str = ""
    choices: tuple[str, ...] = ()
    nullable: bool = False

    def constraints(self) -> list:
        """The scikit-learn ``_parameter_constraints`` entry."""
        from sklearn.utils._param_validation import Interval, StrOptions

        if self.kind in ("int", "float"):
            left = self.low is not None and self.open not in ("low", "both")
            right = self.high is not None and self.open not in ("high", "both")
            closed = {(True, True): "both", (True, False): "left", (False, True): "right"}.get((left, right), "neither")
            number = numbers.Integral if self.kind == "int" else numbers.Real
            allowed: list = [Interval(number, self.low, self.high, closed=closed)]
        else:
            allowed = {"bool": ["boolean"], "choice": [StrOptions(set(self.choices))], "text": [str],
                       "pair": [tuple, list], "seed": ["random_state"], "device": [str, _torch_device()]}[self.kind]
        return [*allowed, None] if self.nullable else allowed


def _torch_device() -> type:
    import torch  # only when constraints are built: the estimator has imported torch by then

    return torch.device


P = Parameter
PARAMETERS: dict[str, Parameter] = {
    # ganaug.models.ARCHITECTURES and ganaug.losses.LOSSES hold these names too (a test compares them).
    "arch": P("dcgan", "choice", "dcgan: sized from the data; classic: the 28x28 TensorFlow DCGAN tutorial.",
              choices=("dcgan", "classic")),
    "latent_dim": P(100, "int", "Size of the noise vector z.", low=1),
    "embed_dim": P(10, "int", "Size of the generator's learned class code.", low=1),
    "width": P(None, "int", "Channels of the outermost network block (dcgan). Default: 32, or 64 below 16 pixels.",
               low=1, nullable=True),
    "kernel_size": P(None, "int", "Kernel of dcgan's convolutions; odd adds a stride-1 block. Default: 4, or 5 "
                     "below 16 pixels.", low=2, high=7, nullable=True),
    "max_epochs": P(50, "int", "Passes over the training data.", low=1),
    "batch_size": P(None, "int", "Images per step. Default: 32 for dcgan, 256 for classic.", low=2, nullable=True),
    "lr_g": P(None, "float", "Generator learning rate. Default: 6e-4 for dcgan, 1e-4 for classic.", low=0,
              open="low", nullable=True),
    "lr_d": P(None, "float", "Discriminator learning rate. Default: 1.2e-3 for dcgan, 1e-4 for classic.", low=0,
              open="low", nullable=True),
    "betas": P(None, "pair", "Adam's betas B1,B2. Default: 0,0.9 for dcgan, 0.9,0.999 for classic.", nullable=True),
    "loss": P("hinge", "choice", "Adversarial loss: hinge, or the classic binary cross-entropy (bce).",
              choices=("hinge", "bce")),
    "spectral_norm": P(True, "bool", "Spectral normalisation of the discriminator's layers."),
    "dropout": P(None, "float", "Dropout after each discriminator block. Default: 0 for dcgan, 0.3 for classic.",
                 low=0, high=1, open="high", nullable=True),
    "minibatch_std": P(False, "bool", "Minibatch standard-deviation layer in the discriminator."),
    "fake_labels": P("batch", "choice", "Labels of the generator's fake batches: batch (the real batch's, so the data's "
                     "class frequencies) or balanced (uniform, so rare classes are practised as often as the others).",
                     choices=("batch", "balanced")),
    "lecam": P(None, "float", "Weight of the LeCam regulariser of the discriminator (Tseng et al. 2021), which keeps "
               "its outputs near moving averages of each other under limited data; 'none' turns it off.", low=0,
               nullable=True),
    "group_spectral": P(None, "float", "Weight of group spectral regularisation of the generator's class "
                        "conditioning (Rangwani et al. 2022) against mode collapse of rare classes; 'none' turns "
                        "it off.", low=0, nullable=True),
    "unconditional_blocks": P(0, "int", "Generator blocks shared by all classes before the class enters (UTLO-style, "
                              "Khorram et al. 2024); 0: the class enters with z.", low=0),
    "pretrain_epochs": P(0, "int", "Epochs of autoencoder pretraining on all classes before adversarial training "
                         "(BAGAN-style): discriminator layers encode, the generator decodes.", low=0),
    "augment": P("translation", "text", "DiffAugment policy before the discriminator, comma-separated from color, "
                 "translation, cutout; 'none' turns it off.", nullable=True),
    "ema": P(0.999, "float", "Sample from a moving average of the generator weights with this decay; 'none' "
             "samples from the trained generator itself.", low=0, high=1, open="both", nullable=True),
    "max_time": P(None, "float", "Training time budget in seconds; training stops after the epoch that passes it.",
                  low=0, open="low", nullable=True),
    "train_classifier": P(True, "bool", "Fit the domain classifier that filtering, the metrics and the monitor use."),
    "precision": P("auto", "choice", "auto: bf16 where the device computes in it natively (CUDA, CPUs with AVX-512 "
                   "BF16 or AMX), else fp32; fp32 is bit-reproducible on the CPU.", choices=("auto", "fp32", "bf16")),
    "compile": P("off", "choice", "torch.compile the networks for training (off, default, reduce-overhead: CUDA "
                 "graphs on CUDA, max-autotune). 0.83x of eager on the 2-core CPU measured.",
                 choices=("off", "default", "reduce-overhead", "max-autotune")),
    "sync_batchnorm": P(False, "bool", "Under torchrun on GPUs: BatchNorm statistics over the global batch "
                        "(torch.nn.SyncBatchNorm), not each process's share of it. GPU only."),
    "device": P("auto", "device", "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps."),
    "random_state": P(None, "seed", "Seeds weights, batches, noise and sampling.", nullable=True),
    "verbose": P(True, "bool", "Show a progress bar with the current losses."),
}
del P

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
    return {name: PARAMETERS[name].constraints() for name in (PARAMETERS if names is None else names)}


def check_values(params: Mapping[str, Any]) -> None:
    """Checks that the constraints cannot express: no bools for numbers, the augment policy, betas."""
    from .augment import check_policy

    for name, value in params.items():
        if isinstance(value, bool) and name in PARAMETERS and PARAMETERS[name].kind in ("int", "float"):
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
    validate_parameter_constraints({name: PARAMETERS[name].constraints()}, {name: value}, caller_name="--set")
    check_values({name: value})
    return name, value


def parse_settings(items: list[str]) -> dict[str, Any]:
    """Several ``NAME=VALUE`` settings (e.g. repeated ``--set`` options) -> keyword arguments.

    >>> parse_settings(["ema=None", "loss=bce"])
    {'ema': None, 'loss': 'bce'}
    """
    return dict(parse_setting(item) for item in items)
