"""One parameter schema: the estimator, the sklearn sampler and `ganaug train` agree on it."""

import inspect

import pytest
from click.testing import CliRunner

from ganaug import ConditionalDCGAN
from ganaug.params import ARCH_DEFAULTS, PARAMETERS, parse_setting
from ganaug.sklearn import GANOverSampler

# Where a front end's default differs on purpose, and why.
SAMPLER_DEFAULTS = {
    "verbose": False,  # a sampler runs inside pipelines and cross-validation loops
    "train_classifier": None,  # trained only when `filter` needs it
}
CLI_DEFAULTS = {
    "random_state": 0,  # --seed: a run is reproducible and resumable by default
}
CLI_NAMES = {"max_epochs": "epochs", "random_state": "seed"}  # option names users know from other tools


def _defaults(cls):
    return {k: p.default for k, p in inspect.signature(cls).parameters.items()}


def test_the_estimator_declares_every_parameter_once():
    gan = _defaults(ConditionalDCGAN)
    assert set(gan) == set(PARAMETERS)
    assert gan == {name: p.default for name, p in PARAMETERS.items()}
    assert set(ConditionalDCGAN._parameter_constraints) == set(PARAMETERS)


def test_the_sampler_accepts_every_parameter_with_the_same_default():
    sampler = _defaults(GANOverSampler)
    missing = set(PARAMETERS) - set(sampler)
    assert not missing, f"GANOverSampler lacks {missing}"
    for name, p in PARAMETERS.items():
        assert sampler[name] == SAMPLER_DEFAULTS.get(name, p.default), name
        assert name in GANOverSampler._parameter_constraints


def test_train_accepts_every_parameter_with_the_same_default():
    from ganaug.cli import main

    train = main.commands["train"]
    given = train.make_context("train", ["--out", "run"]).params  # what click hands the command
    for name, p in PARAMETERS.items():
        if name == "verbose":
            assert given["quiet"] is False  # verbose is `not --quiet`
            continue
        setting = CLI_NAMES.get(name, name)
        assert setting in given, f"ganaug train has no option for {name}"
        assert given[setting] == CLI_DEFAULTS.get(name, p.default), name
    result = CliRunner().invoke(main, ["train", "--help"])
    for name in PARAMETERS:
        if name != "verbose":
            assert f"--{CLI_NAMES.get(name, name).replace('_', '-')}" in result.output, name


@pytest.mark.parametrize("text, expected", [
    ("ema=None", ("ema", None)), ("ema=none", ("ema", None)), ("loss=bce", ("loss", "bce")),
    ("betas=(0.5, 0.999)", ("betas", (0.5, 0.999))), ("max-epochs=3", ("max_epochs", 3)),
    ("augment=translation,cutout", ("augment", "translation,cutout")),
])
def test_parse_setting(text, expected):
    assert parse_setting(text) == expected


@pytest.mark.parametrize("text, match", [
    ("colour=red", "not NAME=VALUE"), ("ema", "not NAME=VALUE"), ("max_epochs=0", "max_epochs"),
    ("loss=wgan", "loss"), ("betas=(0.5, 2)", "betas must be two numbers"), ("augment=blur", "blur"),
])
def test_parse_setting_refuses(text, match):
    with pytest.raises(ValueError, match=match):
        parse_setting(text)


def test_arch_defaults_are_what_training_uses():
    for arch, defaults in ARCH_DEFAULTS.items():
        config = ConditionalDCGAN(arch=arch)._train_config()
        assert (config.lr_g, config.lr_d, config.betas, config.batch_size) == (
            defaults["lr_g"], defaults["lr_d"], defaults["betas"], defaults["batch_size"])
    assert ConditionalDCGAN(lr_g=1e-3, batch_size=8)._train_config().lr_g == 1e-3


def test_choices_are_the_registries_names():
    from ganaug.losses import LOSSES
    from ganaug.models import ARCHITECTURES

    assert set(PARAMETERS["arch"].choices) == set(ARCHITECTURES)
    assert set(PARAMETERS["loss"].choices) == set(LOSSES)


def test_the_schema_imports_neither_torch_nor_sklearn():
    """The command line builds its options from it, and `ganaug --help` must stay instant."""
    import subprocess
    import sys

    code = "import sys, ganaug.params; print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_a_torch_device_is_a_device():
    import torch

    ConditionalDCGAN(device=torch.device("cpu"))._validate_params()
    GANOverSampler(device=torch.device("cpu"))._validate_params()
