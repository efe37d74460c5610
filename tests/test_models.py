import math

import pytest
import torch
from torch import nn

from ganaug.models import build_models, model_config


@pytest.mark.parametrize(
    "shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 10, 13), (5, 64, 48), (1, 9, 100)]
)
def test_networks_sized_from_data(shape):
    config = model_config("dcgan", shape, 4, latent_dim=16, width=8)
    g, d = build_models(config)
    z, y = torch.randn(3, 16), torch.tensor([0, 1, 3])
    x = g(z, y)
    assert tuple(x.shape) == (3, *shape)
    assert x.min() >= -1 and x.max() <= 1
    assert d(x, y).shape == (3,)


def test_classic_preset_matches_tensorflow_tutorial():
    config = model_config("classic", (1, 28, 28), 10)
    g, d = build_models(config)
    assert g.project[0].in_features == 100 + config.embed_dim
    assert g.project[0].out_features == 7 * 7 * 256
    convs = [m for m in g.body if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size, m.stride) for m in convs] == [
        (256, 128, (5, 5), (1, 1)),
        (128, 64, (5, 5), (2, 2)),
        (64, 1, (5, 5), (2, 2)),
    ]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g.modules()) == 3
    assert isinstance(g.body[-1], nn.Tanh)
    dconvs = [m for m in d.features if isinstance(m, nn.Conv2d)]
    assert [(m.out_channels, m.kernel_size, m.stride) for m in dconvs] == [(64, (5, 5), (2, 2)), (128, (5, 5), (2, 2))]
    assert [m.p for m in d.features if isinstance(m, nn.Dropout)] == [0.3, 0.3]
    assert d.linear.in_features == 128 * 7 * 7 and d.linear.out_features == 1
    assert math.isclose(config.leak, 0.3)


def test_classic_preset_takes_channels_from_data_but_not_other_sizes():
    g, _ = build_models(model_config("classic", (3, 28, 28), 2))
    assert g(torch.randn(2, 100), torch.tensor([0, 1])).shape == (2, 3, 28, 28)
    with pytest.raises(ValueError, match='arch="classic" reproduces the 28x28'):
        model_config("classic", (1, 32, 32), 2)
    with pytest.raises(ValueError, match="Unknown arch"):
        model_config("resnet", (1, 32, 32), 2)


def test_both_networks_use_the_label():
    torch.manual_seed(0)
    g, d = build_models(model_config("dcgan", (1, 16, 16), 3, width=8))
    g.eval(), d.eval()
    z = torch.randn(1, 100).repeat(3, 1)
    x = g(z, torch.tensor([0, 1, 2]))
    assert (x[0] - x[1]).abs().max() > 0.1 * x[0].abs().max()  # same z, different class -> different image
    img = (torch.rand(1, 1, 16, 16) * 2 - 1).repeat(3, 1, 1, 1)
    logits = d(img, torch.tensor([0, 1, 2]))
    unconditional = d.linear(d.features(img[:1])).abs().item()
    assert (logits[0] - logits[1]).abs() > 0.01 * unconditional  # same image, other class -> other logit


def test_spectral_norm_option():
    _, d = build_models(model_config("dcgan", (1, 16, 16), 3, width=8, spectral_norm=True))
    names = [n for n, _ in d.named_parameters()]
    assert any("parametrizations.weight.original" in n for n in names)
    x = torch.randn(4, 1, 16, 16)
    assert torch.isfinite(d(x, torch.tensor([0, 1, 2, 0]))).all()


def test_dcgan_uses_4x4_stride_2_convolutions_only():
    config = model_config("dcgan", (1, 28, 28), 10, width=32)
    g, d = build_models(config)
    convs = [m for m in g.body if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size, m.stride) for m in convs] == [
        (64, 32, (4, 4), (2, 2)),
        (32, 1, (4, 4), (2, 2)),
    ]
    assert g.project[0].out_features == 64 * 7 * 7
    assert [(m.out_channels, m.kernel_size, m.stride) for m in d.features if isinstance(m, nn.Conv2d)] == [
        (32, (4, 4), (2, 2)), (64, (4, 4), (2, 2))]
    assert d.linear.in_features == 64 * 7 * 7


@pytest.mark.parametrize("shape, kernel, width", [((1, 8, 8), 5, 64), ((1, 12, 12), 5, 64), ((1, 16, 16), 4, 32),
                                                  ((3, 28, 28), 4, 32)])
def test_dcgan_default_kernel_and_width_follow_the_image_size(shape, kernel, width):
    config = model_config("dcgan", shape, 3)
    assert (config.kernel_size, config.d_widths[0], config.g_widths[-1]) == (kernel, width, width)


def test_dropout_is_the_tutorials_for_classic_and_off_for_dcgan():
    dropouts = lambda d: [m.p for m in d.modules() if isinstance(m, nn.Dropout)]  # noqa: E731
    _, plain = build_models(model_config("dcgan", (1, 28, 28), 10))
    _, dropped = build_models(model_config("dcgan", (1, 28, 28), 10, dropout=0.5))
    _, classic = build_models(model_config("classic", (1, 28, 28), 10))
    assert (dropouts(plain), dropouts(dropped), dropouts(classic)) == ([], [0.5, 0.5], [0.3, 0.3])
    # The same state-dict keys with or without dropout: either checkpoint loads into either layout.
    assert plain.state_dict().keys() == dropped.state_dict().keys()


def test_checkpoints_of_the_earlier_dcgan_layout_still_build():
    """Configs saved before ``base_block`` existed rebuild the layout they were trained with."""
    from ganaug.models import ModelConfig

    old = {"n_classes": 3, "channels": 1, "height": 16, "width": 16, "latent_dim": 8, "embed_dim": 4,
           "g_widths": [32, 16, 8], "d_widths": [8, 16], "base_size": [4, 4], "kernel_size": 5, "leak": 0.2,
           "dropout": 0.3, "spectral_norm": False, "minibatch_std": False, "init": "normal", "arch": "dcgan",
           "extra": {}}
    g, d = build_models(ModelConfig.from_dict(old))
    first = next(m for m in g.body if isinstance(m, nn.ConvTranspose2d))
    assert (first.kernel_size, first.stride) == ((5, 5), (1, 1))
    x = g(torch.randn(2, 8), torch.tensor([0, 2]))
    assert x.shape == (2, 1, 16, 16) and d(x, torch.tensor([0, 2])).shape == (2,)
    assert d.linear.in_features == 16 * 4 * 4
