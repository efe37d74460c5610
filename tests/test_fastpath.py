"""The fast paths (ganaug.fastpath): chosen per device, and close to the plain fp32 path."""

import warnings

import numpy as np
import pytest
import torch
from conftest import TINY

from ganaug import ConditionalDCGAN, fastpath, load_digits
from ganaug.data import as_image_data
from ganaug.fastpath import FastPath, fast_path, resolve_precision
from ganaug.models import build_models, model_config
from ganaug.sampling import generate
from ganaug.trainer import TrainConfig, train

CPU = torch.device("cpu")


def test_auto_takes_bf16_only_where_the_device_computes_in_it(monkeypatch):
    monkeypatch.setattr(fastpath, "_cpu_has_bf16", lambda: False)
    assert resolve_precision("auto", CPU) == "fp32"
    monkeypatch.setattr(fastpath, "_cpu_has_bf16", lambda: True)
    assert resolve_precision("auto", CPU) == "bf16"
    assert resolve_precision("fp32", CPU) == "fp32"
    assert resolve_precision("auto", torch.device("mps")) == "fp32"


def test_bf16_where_it_is_emulated_warns_and_is_honoured(monkeypatch):
    monkeypatch.setattr(fastpath, "_cpu_has_bf16", lambda: False)
    with pytest.warns(RuntimeWarning, match="emulated and slower than fp32"):
        assert resolve_precision("bf16", CPU) == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp16", CPU)
    with pytest.raises(ValueError, match="compile must be one of"):
        fast_path(CPU, "fp32", compile="fast")


def test_cuda_takes_its_fast_paths_and_the_cpu_stays_on_the_plain_one():
    cuda = fast_path(torch.device("cuda"), "fp32")  # constructing the device needs no GPU
    assert (cuda.channels_last, cuda.fused, cuda.device_rng) == (True, True, True)
    cpu = fast_path(CPU, "fp32")
    assert (cpu.channels_last, cpu.fused, cpu.device_rng, cpu.compile) == (False, False, False, "off")


@pytest.mark.parametrize("params, match", [({"precision": "fp16"}, "precision"), ({"compile": "yes"}, "compile")])
def test_the_estimator_refuses_unknown_settings(digits, params, match):
    X, y = digits
    with pytest.raises(ValueError, match=match):
        ConditionalDCGAN(**TINY, **params).fit(X[:64], y[:64])


def _train(path: FastPath | None, precision: str = "fp32", seed: int = 0):
    X, y = load_digits()
    data = as_image_data(X[:640], y[:640])
    torch.manual_seed(0)
    generator, discriminator = build_models(model_config("dcgan", (1, 8, 8), 10, width=8, latent_dim=16))
    config = TrainConfig(max_epochs=1, batch_size=32, lr_g=6e-4, lr_d=1.2e-3, betas=(0.0, 0.9), loss="hinge",
                         augment="translation", precision=precision)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # bf16 emulated on this CPU
        state = train(generator, discriminator, data, config, seed=seed, device=CPU, path=path, verbose=False)
    return state, generator


def test_forced_fast_paths_match_the_plain_path_within_tolerance():
    # channels_last, fused Adam and device-drawn noise change only the order of float operations:
    # over the 20 steps of an epoch the losses and weights stay within 1e-5 of the plain path's
    # (2.4e-7 measured on an AVX2 CPU).
    plain, g_plain = _train(None)
    fast, g_fast = _train(FastPath(CPU, channels_last=True, fused=True, device_rng=True))
    assert len(fast.history["d_loss"]) == len(plain.history["d_loss"]) == 20
    for key in ("d_loss", "g_loss"):
        np.testing.assert_allclose(fast.history[key], plain.history[key], atol=1e-5)
    for a, b in zip(g_fast.parameters(), g_plain.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=1e-5)


def test_fp32_training_is_bit_reproducible():
    (a, g_a), (b, g_b) = _train(None), _train(None)
    assert a.history == b.history
    assert all(torch.equal(p, q) for p, q in zip(g_a.state_dict().values(), g_b.state_dict().values()))


def test_bf16_training_and_sampling_follow_fp32_within_tolerance():
    # bf16 keeps 8 bits of mantissa (about 3 significant digits): over one epoch the losses stay
    # within 0.01 of fp32's (5e-4 measured on an AVX2 CPU), and images from the same generator
    # within 0.02 of fp32's on the [-1, 1] scale (0.0023 measured).
    fp32, g32 = _train(None)
    bf16, _ = _train(None, precision="bf16")
    for key in ("d_loss", "g_loss"):
        np.testing.assert_allclose(bf16.history[key], fp32.history[key], atol=0.01)
    g32.eval()
    labels, seeds = np.arange(40) % 10, np.arange(40)
    exact = generate(g32, labels, seeds, precision="fp32")
    rounded = generate(g32, labels, seeds, precision="bf16")
    assert rounded.dtype == torch.float32 and not torch.equal(exact, rounded)
    assert (rounded - exact).abs().max() < 0.02


@pytest.mark.slow
def test_compiled_training_matches_eager_and_saves_the_same_checkpoint(digits, tmp_path):
    X, y = digits
    settings = dict(TINY, random_state=0, precision="fp32", train_classifier=False)
    eager = ConditionalDCGAN(**settings).fit(X[:400], y[:400])
    compiled = ConditionalDCGAN(**settings, compile="default").fit(X[:400], y[:400])
    np.testing.assert_allclose(compiled.history_["d_loss"][:5], eager.history_["d_loss"][:5], atol=1e-4)
    compiled.save(tmp_path / "model")
    assert ConditionalDCGAN.load(tmp_path / "model").generator_.state_dict().keys() == \
        eager.generator_.state_dict().keys()
