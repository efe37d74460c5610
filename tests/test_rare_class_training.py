"""Generator options against class-specific collapse (issue 18, item 3 and 4): group spectral
regularisation, UTLO-style unconditional blocks, autoencoder pretraining."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import TINY

from ganaug import CheckpointError, ConditionalDCGAN
from ganaug.losses import group_spectral_penalty
from ganaug.models import Generator, model_config
from ganaug.pretrain import pretrain_autoencoder


def test_group_spectral_penalty_is_the_mean_squared_top_singular_value():
    m = torch.randn(3, 5, 7, dtype=torch.float64)
    expected = (torch.linalg.svdvals(m)[:, 0] ** 2).mean()
    assert group_spectral_penalty(m).item() == pytest.approx(expected.item(), rel=1e-5)
    assert group_spectral_penalty(m.transpose(1, 2)).item() == pytest.approx(expected.item(), rel=1e-5)
    m.requires_grad_(True)
    group_spectral_penalty(m).backward()
    with torch.no_grad():
        assert group_spectral_penalty(m - 0.01 * m.grad).item() < expected.item()


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_class_conditioning_is_what_the_class_adds(shape):
    torch.manual_seed(0)
    g = Generator(model_config("dcgan", shape, 4)).eval()
    cond = g.class_conditioning()
    assert cond.shape[:2] == (4, g.config.g_widths[0])
    # The projection of [z, e_c] is the projection of [z, 0] plus class c's conditioning.
    z = torch.randn(2, g.config.latent_dim)
    linear = g.project[0]
    with torch.no_grad():
        with_class = linear(torch.cat([z, g.embed(torch.tensor([3, 3]))], dim=1))
        without = linear(torch.cat([z, torch.zeros(2, g.config.embed_dim)], dim=1))
    assert torch.allclose(with_class - without, cond[3].reshape(1, -1).expand(2, -1), atol=1e-5)


@pytest.mark.parametrize("k", [1, 2])
def test_unconditional_blocks_are_shared_by_all_classes(k):
    torch.manual_seed(0)
    g = Generator(model_config("dcgan", (1, 28, 28), 10, unconditional_blocks=k)).eval()
    seen = []
    layers = [*g.project, *g.body]
    layers[3 * k - 1].register_forward_hook(lambda m, i, out: seen.append(out.clone()))  # block k's BatchNorm
    z = torch.randn(1, g.config.latent_dim).expand(10, -1)
    with torch.no_grad():
        g.film.bias.normal_()  # a class term that is not (near) zero, as after training
        images = g(z, torch.arange(10))
    (before_class,) = seen
    assert torch.allclose(before_class, before_class[:1].expand_as(before_class), atol=1e-6)  # same z, same features
    assert (images - images[:1]).abs().amax(dim=(1, 2, 3))[1:].min() > 1e-4  # the class still shapes the image
    assert g.class_conditioning().shape[0] == 10


def test_unconditional_blocks_beyond_the_generator_are_refused():
    with pytest.raises(ValueError, match=r"unconditional_blocks=3, but this generator has 2 blocks.*choose 0 to 2"):
        model_config("dcgan", (1, 8, 8), 10, unconditional_blocks=3)
    assert len(model_config("classic", (1, 28, 28), 10, unconditional_blocks=3).g_widths) == 3


def test_pretraining_learns_to_reconstruct_and_leaves_the_logit_layers(digits):
    X, y = digits
    gan = ConditionalDCGAN(random_state=0, **dict(TINY, max_epochs=1)).fit(X[:64], y[:64])
    g, d = gan.generator_, gan.discriminator_
    images, labels = _digit_tensors(digits, gan, 256)
    logits_before = [t.detach().clone() for t in (*d.linear.parameters(), *d.embed.parameters())]
    rng_state = torch.get_rng_state()
    losses = pretrain_autoencoder(g, d, images, labels, epochs=15, batch_size=32, seed=0)
    assert torch.equal(torch.get_rng_state(), rng_state)  # its own RNG
    assert len(losses) == 15 * 8
    assert np.mean(losses[-8:]) < 0.6 * np.mean(losses[:8])
    assert all(torch.equal(a, b) for a, b in zip(logits_before, (*d.linear.parameters(), *d.embed.parameters())))


def _digit_tensors(digits, gan, n):
    from ganaug.data import as_image_data

    data = as_image_data(digits[0][:n], digits[1][:n])
    assert np.array_equal(data.classes, gan.classes_)
    return data.images, data.labels


def _weights(net):
    return torch.cat([p.detach().flatten() for p in net.parameters()])


@pytest.mark.parametrize("option", [{"group_spectral": 1.0}, {"pretrain_epochs": 2}, {"unconditional_blocks": 1}])
def test_options_train_round_trip_and_resume_exactly(digits, tmp_path, option):
    X, y = digits[0][:128], digits[1][:128]
    params = dict(TINY, max_epochs=2, ema=0.9, **option)
    straight = ConditionalDCGAN(random_state=0, **params).fit(X, y)
    plain = ConditionalDCGAN(random_state=0, **dict(TINY, max_epochs=2, ema=0.9)).fit(X, y)
    assert straight.history_["g_loss"] != plain.history_["g_loss"]
    first = ConditionalDCGAN(random_state=0, **dict(params, max_epochs=1)).fit(X, y)
    first.save(tmp_path / "ckpt")
    resumed = ConditionalDCGAN.load(tmp_path / "ckpt", device="cpu")
    assert resumed.get_params()[next(iter(option))] == next(iter(option.values()))
    resumed.set_params(max_epochs=2).fit(X, y, resume=True)  # pretraining is not repeated
    assert resumed.history_ == straight.history_
    assert torch.equal(_weights(resumed.generator_), _weights(straight.generator_))
    a, _ = resumed.sample(10, random_state=1)
    b, _ = straight.sample(10, random_state=1)
    assert np.array_equal(a, b)


def test_group_spectral_regularisation_lowers_the_top_singular_values(digits):
    X, y = digits[0][:256], digits[1][:256]
    params = dict(TINY, max_epochs=3, ema=None)
    top = {}
    for weight in (None, 3.0):
        gan = ConditionalDCGAN(random_state=0, group_spectral=weight, **params).fit(X, y)
        top[weight] = torch.linalg.matrix_norm(gan.generator_.class_conditioning().detach(), ord=2)
    assert (top[3.0] < top[None]).all()


def test_pretraining_runs_once_before_the_first_step_and_moves_the_average_along(digits):
    from ganaug.trainer import TrainState, _pretrain

    gan = ConditionalDCGAN(random_state=0, **dict(TINY, max_epochs=1, ema=0.9)).fit(digits[0][:64], digits[1][:64])
    g, d, ema = gan.generator_, gan.discriminator_, gan.generator_ema_
    images, labels = _digit_tensors(digits, gan, 64)
    config = replace(gan.train_config_, pretrain_epochs=1)
    before = _weights(g)
    _pretrain(g, d, images, labels, config, TrainState(epoch=1, step=2), 0, ema)  # a resumed run: nothing
    assert torch.equal(_weights(g), before)
    _pretrain(g, d, images, labels, config, TrainState(), 0, ema)
    assert not torch.equal(_weights(g), before)
    assert torch.equal(_weights(ema), _weights(g))  # the average starts from the pretrained weights


def test_a_checkpoint_with_too_many_unconditional_blocks_is_refused(digits, tmp_path):
    import json

    gan = ConditionalDCGAN(random_state=0, **dict(TINY, max_epochs=1, unconditional_blocks=1)).fit(*digits)
    path = gan.save(tmp_path / "m")
    doc = json.loads((path / "ganaug.json").read_text())
    doc["model"]["unconditional_blocks"] = 5
    (path / "ganaug.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="model.unconditional_blocks"):
        ConditionalDCGAN.load(path)
