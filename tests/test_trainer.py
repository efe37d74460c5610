import copy

import numpy as np
import pytest
import torch
from conftest import TINY

from ganaug import ConditionalDCGAN
from ganaug.losses import LOSSES, GANLoss
from ganaug.ema import ema_decay, standing_batchnorm_stats, update_ema
from ganaug.trainer import TrainConfig, train


def test_update_ema_moves_towards_the_model():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    with torch.no_grad():
        a.weight.fill_(0.0)
        b.weight.fill_(1.0)
    update_ema(a, b, decay=0.9)
    assert torch.allclose(a.weight, torch.full((2, 2), 0.1))


def test_ema_decay_ramps_up_to_the_requested_decay():
    assert ema_decay(0.999, 0) == 0.1  # the first average is mostly the trained weights
    assert ema_decay(0.999, 90) == 0.91
    assert ema_decay(0.999, 100_000) == 0.999
    assert ema_decay(0.5, 10) == 0.5


def test_ema_generator_gets_batchnorm_stats_of_its_own_weights(digits):
    X, y = digits
    gan = ConditionalDCGAN(random_state=0, ema=0.9, **dict(TINY, max_epochs=2)).fit(X[:400], y[:400])
    ema, trained = gan.generator_ema_, gan.generator_
    norm = ema.project[2]
    # update_ema copies the trained generator's statistics; fit then re-measures them.
    assert not torch.equal(norm.running_mean, trained.project[2].running_mean)

    with torch.no_grad():
        norm.running_mean.fill_(5.0)
        norm.running_var.fill_(100.0)
    standing_batchnorm_stats(ema, seed=0, device=torch.device("cpu"))
    rng = torch.Generator().manual_seed(1)
    z = torch.randn(4096, ema.config.latent_dim, generator=rng)
    labels = torch.randint(0, ema.config.n_classes, (4096,), generator=rng)
    with torch.no_grad():
        pre_norm = ema.project[:2](torch.cat([z, ema.embed(labels)], dim=1))  # (N, C, h, w) before BatchNorm
    own_mean, own_var = pre_norm.mean(dim=(0, 2, 3)), pre_norm.var(dim=(0, 2, 3))
    assert torch.allclose(norm.running_mean, own_mean, atol=0.1 * own_var.sqrt().max().item())
    assert torch.allclose(norm.running_var, own_var, rtol=0.2)
    assert not ema.training  # the mode it was in

    standing_batchnorm_stats(torch.nn.Linear(2, 2), seed=0, device=torch.device("cpu"))  # no BatchNorm: no-op


def test_callback_sees_the_average_with_its_own_batchnorm_stats(digits):
    """The CLI saves a checkpoint from the callback: it must sample as well as the final model."""
    X, y = digits
    seen = []

    def callback(gan, state):
        seen.append(gan.generator_ema_.project[2].running_mean.clone())

    gan = ConditionalDCGAN(random_state=0, ema=0.9, **TINY).fit(X[:200], y[:200], callback=callback)
    # Re-measuring is deterministic, so the callback saw what fit leaves at the end.
    torch.testing.assert_close(seen[-1], gan.generator_ema_.project[2].running_mean)
    assert not torch.equal(seen[-1], gan.generator_.project[2].running_mean)


def test_ema_generator_samples_and_round_trips(digits, tmp_path):
    X, y = digits
    gan = ConditionalDCGAN(random_state=0, ema=0.9, **TINY).fit(X[:200], y[:200])
    assert gan.sampling_generator_ is gan.generator_ema_ is not None
    raw = dict(gan.generator_.named_parameters())
    assert any(not torch.equal(p, raw[n]) for n, p in gan.generator_ema_.named_parameters())
    gan.save(tmp_path / "c")
    loaded = ConditionalDCGAN.load(tmp_path / "c", device="cpu")
    np.testing.assert_array_equal(loaded.sample(5, random_state=1)[0], gan.sample(5, random_state=1)[0])
    for n, p in loaded.generator_.named_parameters():
        assert torch.equal(p, raw[n])


@pytest.mark.parametrize("options", [{"augment": "translation,cutout"}, {"spectral_norm": True, "loss": "hinge"},
                                     {"minibatch_std": True}, {"embed_dim": 4}])
def test_training_options_train_and_reload(digits, tmp_path, options):
    X, y = digits
    gan = ConditionalDCGAN(random_state=0, **{**TINY, **options}).fit(X[:128], y[:128])
    assert all(np.isfinite(v).all() for v in gan.history_.values())
    gan.save(tmp_path / "c")
    loaded = ConditionalDCGAN.load(tmp_path / "c")
    np.testing.assert_array_equal(loaded.sample(4, random_state=0)[0], gan.sample(4, random_state=0)[0])


def test_non_finite_loss_stops_training_with_a_clear_error(digits, monkeypatch):
    X, y = digits
    nan_loss = GANLoss(lambda r, f: (r * float("nan")).mean(), lambda f: f.mean())
    monkeypatch.setitem(LOSSES, "nan", nan_loss)
    monkeypatch.setitem(ConditionalDCGAN._parameter_constraints, "loss", [str])  # let "nan" through validation
    with pytest.raises(FloatingPointError, match="diverged in epoch 1.*last checkpoint"):
        ConditionalDCGAN(random_state=0, loss="nan", **TINY).fit(X[:64], y[:64])


def test_max_time_stops_after_the_epoch_that_passes_it(digits):
    X, y = digits
    gan = ConditionalDCGAN(random_state=0, **{**TINY, "max_epochs": 1000, "max_time": 1e-6}).fit(X[:64], y[:64])
    assert gan.n_epochs_ == 1


@pytest.mark.parametrize("params, match", [({"augment": "blur"}, "Unknown augmentation"),
                                           ({"ema": 1.5}, r"The 'ema' parameter .* in the range \(0.0, 1.0\)"),
                                           ({"max_time": -1}, "The 'max_time' parameter")])
def test_bad_training_options(digits, params, match):
    X, y = digits
    with pytest.raises(ValueError, match=match):
        ConditionalDCGAN(**{**TINY, **params}).fit(X[:64], y[:64])


def test_train_config_round_trips_and_refuses_unknown_or_missing_fields():
    config = TrainConfig(max_epochs=3, batch_size=16, lr_g=1e-3, lr_d=2e-3, betas=(0.5, 0.9), loss="hinge")
    assert TrainConfig.from_dict(config.to_dict()) == config
    # augment, ema and max_time are off when absent (checkpoints from before they existed).
    old = {k: v for k, v in config.to_dict().items() if k not in ("augment", "ema", "max_time")}
    assert TrainConfig.from_dict(old) == config
    with pytest.raises(ValueError, match=r"Unknown training config fields \['momentum'\]"):
        TrainConfig.from_dict({**config.to_dict(), "momentum": 0.9})
    with pytest.raises(ValueError, match=r"lacks the fields \['lr_d'\]"):
        TrainConfig.from_dict({k: v for k, v in config.to_dict().items() if k != "lr_d"})
    with pytest.raises(TypeError, match="must be a JSON object"):
        TrainConfig.from_dict([1, 2])


def test_train_refuses_an_average_without_a_decay(digits):
    from ganaug.data import as_image_data
    from ganaug.models import Discriminator, Generator, ModelConfig

    X, y = digits
    data = as_image_data(X[:64], y[:64])
    model = ModelConfig(n_classes=10, channels=1, height=8, width=8, latent_dim=4, embed_dim=4, g_widths=(8, 8),
                        d_widths=(8, 8), base_size=(2, 2))
    generator = Generator(model)
    config = TrainConfig(max_epochs=1, batch_size=32, lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.999), loss="bce")
    with pytest.raises(ValueError, match="needs config.ema"):
        train(generator, Discriminator(model), data, config, seed=0, device=torch.device("cpu"),
              ema_generator=copy.deepcopy(generator))


def test_balanced_fake_labels_are_uniform_and_batch_labels_follow_the_data():
    from types import SimpleNamespace

    from ganaug.trainer import _epoch_batches

    images, labels = torch.zeros(600, 1, 4, 4), torch.zeros(600, dtype=torch.long)  # one class in the data
    model = SimpleNamespace(latent_dim=3, n_classes=3)
    batch = list(_epoch_batches(images, labels, 100, model, seed=0, epoch=0))
    assert all(y_fake is y for _, y, _, y_fake in batch)
    balanced = list(_epoch_batches(images, labels, 100, model, seed=0, epoch=0, balanced=True))
    fake = torch.cat([y_fake for *_, y_fake in balanced])
    assert torch.bincount(fake, minlength=3).min() > 150  # ~200 of each of 3 classes
    assert all(torch.equal(y, torch.zeros(100, dtype=torch.long)) for _, y, _, _ in balanced)
    again = list(_epoch_batches(images, labels, 100, model, seed=0, epoch=0, balanced=True))
    assert all(torch.equal(a[3], b[3]) for a, b in zip(balanced, again))


def test_balanced_fake_labels_train_and_round_trip(digits, tmp_path):
    X, y = digits
    gan = ConditionalDCGAN(random_state=0, fake_labels="balanced", **TINY).fit(X[:400], y[:400])
    plain = ConditionalDCGAN(random_state=0, **TINY).fit(X[:400], y[:400])
    assert gan.train_config_.fake_labels == "balanced"
    assert gan.history_["g_loss"] != plain.history_["g_loss"]
    gan.save(tmp_path / "m")
    assert ConditionalDCGAN.load(tmp_path / "m").train_config_.fake_labels == "balanced"


def test_lecam_penalty_and_anchors():
    from ganaug.trainer import LeCamAnchors

    anchors = LeCamAnchors(torch.device("cpu"))
    d_real, d_fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])
    assert anchors.penalty(d_real, d_fake).item() == pytest.approx((4 + 0) / 2 + (1 + 0) / 2)
    anchors.update(d_real, d_fake)  # means 1 and 0: 0.01 of the way from zero
    assert (anchors.real.item(), anchors.fake.item()) == pytest.approx((0.01, 0.0))
    # relu(D(real) - a_fake)^2 and relu(a_real - D(fake))^2
    assert anchors.penalty(d_real, d_fake).item() == pytest.approx(2.0 + 1.01**2 / 2)
    history = {"d_real": [1.0, 3.0], "d_fake": [0.0, -2.0]}
    rebuilt = LeCamAnchors.from_history(history, torch.device("cpu"))
    assert rebuilt.real.item() == pytest.approx(0.99 * 0.01 + 0.01 * 3.0)
    assert rebuilt.fake.item() == pytest.approx(0.01 * -2.0)


def test_lecam_trains_resumes_exactly_and_round_trips(digits, tmp_path):
    X, y = digits[0][:128], digits[1][:128]
    params = dict(TINY, max_epochs=2, lecam=0.3)
    straight = ConditionalDCGAN(random_state=0, **params).fit(X, y)
    plain = ConditionalDCGAN(random_state=0, **dict(params, lecam=None)).fit(X, y)
    assert straight.train_config_.lecam == 0.3 and straight.history_["d_loss"] != plain.history_["d_loss"]
    first = ConditionalDCGAN(random_state=0, **dict(params, max_epochs=1)).fit(X, y)
    first.save(tmp_path / "ckpt")
    resumed = ConditionalDCGAN.load(tmp_path / "ckpt", device="cpu")
    assert resumed.train_config_.lecam == 0.3
    resumed.set_params(max_epochs=2).fit(X, y, resume=True)
    assert resumed.history_ == straight.history_  # the anchors were rebuilt from the history
