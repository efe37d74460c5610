import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

from conftest import TINY, make_images
from ganaug import ConditionalDCGAN


def test_fit_returns_self_and_sets_learned_attributes(digits):
    X, y = digits
    gan = ConditionalDCGAN(random_state=0, **TINY)
    assert gan.fit(X[:200], y[:200]) is gan
    assert gan.classes_.tolist() == list(range(10))
    assert gan.image_shape_ == (1, 8, 8)
    assert gan.class_counts_.sum() == 200
    assert gan.n_epochs_ == 1 and gan.n_steps_ == 200 // 32
    assert all(len(v) == gan.n_steps_ for v in gan.history_.values())
    assert set(gan.history_) == {"d_loss", "g_loss", "d_real", "d_fake"}


def test_init_stores_parameters_unchanged():
    params = dict(arch="classic", max_epochs=3, random_state=np.random.RandomState(0), betas=(0.1, 0.2))
    gan = ConditionalDCGAN(**params)
    for k, v in params.items():
        assert gan.get_params()[k] is v


def test_sample_exact_counts_in_request_order(tiny_gan):
    X, y = tiny_gan.sample({3: 5, 7: 2})
    assert X.shape == (7, 8, 8) and X.dtype == np.float32
    assert y.tolist() == [3] * 5 + [7] * 2
    X, y = tiny_gan.sample(23)
    assert X.shape == (23, 8, 8)
    assert np.bincount(y, minlength=10).tolist() == [3, 3, 3] + [2] * 7
    assert X.min() >= 0 and X.max() <= 1
    X, y, seeds = tiny_gan.sample({1: 0}, return_seeds=True)
    assert X.shape == (0, 8, 8) and y.shape == (0,) and seeds.shape == (0,)


@pytest.mark.parametrize(
    "X_shape, dtype, kwargs",
    [
        ((40, 10, 10, 3), np.uint8, {}),
        ((40, 3, 10, 10), np.float64, {}),
        ((40, 100), np.uint8, {"image_shape": (10, 10)}),
    ],
)
def test_sample_comes_back_like_fit_input(X_shape, dtype, kwargs):
    X, y = make_images(n=X_shape[0], shape=X_shape[1:], dtype=dtype)
    gan = ConditionalDCGAN(random_state=0, **TINY).fit(X, y, **kwargs)
    Xs, ys = gan.sample(6)
    assert Xs.shape == (6, *X_shape[1:]) and Xs.dtype == dtype
    assert ys.dtype == y.dtype
    lo, hi = (0, 255) if dtype == np.uint8 else (0, 1)
    assert Xs.min() >= lo and Xs.max() <= hi


def test_torch_in_torch_out_and_string_labels():
    X = torch.rand(30, 1, 9, 9)
    y = np.array(["ant", "bee", "cat"] * 10)
    gan = ConditionalDCGAN(random_state=0, **TINY).fit(X, y)
    Xs, ys = gan.sample({"bee": 4})
    assert isinstance(Xs, torch.Tensor) and Xs.shape == (4, 1, 9, 9)
    assert ys.tolist() == ["bee"] * 4
    assert gan.classes_.tolist() == ["ant", "bee", "cat"]


def test_same_seed_gives_identical_bytes(digits):
    X, y = digits
    a = ConditionalDCGAN(random_state=7, **TINY).fit(X[:200], y[:200])
    b = ConditionalDCGAN(random_state=7, **TINY).fit(X[:200], y[:200])
    c = ConditionalDCGAN(random_state=8, **TINY).fit(X[:200], y[:200])
    sa, sb, sc = a.sample(20, random_state=3)[0], b.sample(20, random_state=3)[0], c.sample(20, random_state=3)[0]
    assert sa.tobytes() == sb.tobytes()
    assert not np.array_equal(sa, sc)
    assert a.history_ == b.history_
    # Unseeded calls draw fresh seeds from the model's own stream: they differ call to call.
    assert not np.array_equal(a.sample(5)[0], a.sample(5)[0])


def test_unseeded_streams_match_between_identical_models(digits):
    X, y = digits
    a = ConditionalDCGAN(random_state=7, **TINY).fit(X[:100], y[:100])
    b = ConditionalDCGAN(random_state=7, **TINY).fit(X[:100], y[:100])
    for _ in range(2):
        assert np.array_equal(a.sample(5)[0], b.sample(5)[0])


def test_seeds_regenerate_single_images(tiny_gan):
    X, y, seeds = tiny_gan.sample({2: 3, 5: 3}, random_state=100, return_seeds=True)
    assert seeds.tolist() == list(range(100, 106))
    again = tiny_gan.sample_from_seeds([y[4], y[1]], [seeds[4], seeds[1]])
    np.testing.assert_allclose(again, X[[4, 1]], atol=1e-6)


def test_global_rngs_are_untouched(digits):
    X, y = digits
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    gan = ConditionalDCGAN(random_state=0, **TINY).fit(X[:100], y[:100])
    gan.sample(10)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state)


def test_short_training_beats_chance_by_far(digits):
    """A classifier trained on real digits recognises the generated digits' classes."""
    X, y = digits
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X))
    train, test = order[:1300], order[1300:]
    judge = LogisticRegression(max_iter=3000).fit(X[train].reshape(len(train), -1), y[train])
    assert judge.score(X[test].reshape(len(test), -1), y[test]) > 0.9
    gan = ConditionalDCGAN(max_epochs=15, random_state=0, verbose=False, device="cpu").fit(X[train], y[train])
    fakes, labels = gan.sample(500, random_state=0)
    accuracy = judge.score(fakes.reshape(len(fakes), -1), labels)
    assert accuracy > 0.7, f"generated digits recognised only {accuracy:.1%} of the time (chance: 10%)"
    assert fakes.std(axis=0).mean() > 0.02  # not one image repeated


def test_resume_continues_exactly(digits, tmp_path):
    X, y = digits[0][:128], digits[1][:128]
    params = dict(TINY, max_epochs=2)
    straight = ConditionalDCGAN(random_state=0, **params).fit(X, y)
    first = ConditionalDCGAN(random_state=0, **dict(params, max_epochs=1)).fit(X, y)
    first.save(tmp_path / "ckpt")
    resumed = ConditionalDCGAN.load(tmp_path / "ckpt", device="cpu")
    resumed.set_params(max_epochs=2)
    resumed.fit(X, y, resume=True)
    assert resumed.n_epochs_ == 2 and resumed.n_steps_ == straight.n_steps_
    assert resumed.history_ == straight.history_
    np.testing.assert_array_equal(resumed.sample(8, random_state=0)[0], straight.sample(8, random_state=0)[0])


def test_resume_refuses_other_data(tiny_gan):
    X, y = make_images(n=20, shape=(9, 9))
    with pytest.raises(ValueError, match="Cannot resume: the data's images are"):
        tiny_gan.fit(X, y, resume=True)


def test_callback_sees_each_epoch_and_can_stop(digits):
    X, y = digits
    seen = []
    gan = ConditionalDCGAN(random_state=0, **dict(TINY, max_epochs=5))
    gan.fit(X[:64], y[:64], callback=lambda g, state: seen.append(state.epoch) or state.epoch == 2)
    assert seen == [1, 2] and gan.n_epochs_ == 2


def test_save_grid_has_one_row_per_class(tiny_gan, tmp_path):
    from PIL import Image

    path = tiny_gan.save_grid(tmp_path / "grid.png", n_per_class=4)
    img = Image.open(path)
    pad = 2
    assert img.size == (4 * (8 + pad) + pad, 10 * (8 + pad) + pad)


@pytest.mark.parametrize(
    "params, error, match",
    [
        # scikit-learn's own messages, from the declared constraints (ganaug.params)
        ({"arch": "vgg"}, ValueError, "The 'arch' parameter of ConditionalDCGAN must be a str among"),
        ({"loss": "wgan"}, ValueError, "The 'loss' parameter"),
        ({"max_epochs": 0}, ValueError, r"The 'max_epochs' parameter .* in the range \[1, inf\)"),
        ({"batch_size": 1}, ValueError, r"The 'batch_size' parameter .* in the range \[2, inf\)"),
        ({"lr_g": -1.0}, ValueError, "The 'lr_g' parameter"),
        ({"dropout": 1.5}, ValueError, "The 'dropout' parameter"),
        ({"ema": 1.0}, ValueError, "The 'ema' parameter"),
        ({"max_time": 0}, ValueError, "The 'max_time' parameter"),
        # what the constraints cannot say
        ({"betas": (0.5, 1.5)}, ValueError, "betas must be two numbers"),
        ({"latent_dim": True}, ValueError, "latent_dim must be a number, not True"),
        ({"augment": "blur"}, ValueError, "blur"),
        ({"device": "cuda:7"} if not torch.cuda.is_available() else {"device": "cuda:99"}, ValueError, "not available"),
        ({"device": "toaster"}, ValueError, "Unknown device"),
    ],
)
def test_bad_parameters_fail_in_fit(params, error, match, digits):
    X, y = digits
    gan = ConditionalDCGAN(**{**TINY, **params})  # __init__ never validates
    with pytest.raises(error, match=match):
        gan.fit(X[:64], y[:64])


def test_sample_errors(tiny_gan):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        ConditionalDCGAN().sample(3)
    with pytest.raises(ValueError, match=r"Unknown classes \[42\]"):
        tiny_gan.sample({42: 1})
    with pytest.raises(ValueError, match="must be >= 0"):
        tiny_gan.sample({1: -2})
    with pytest.raises(ValueError, match="must be >= 0"):
        tiny_gan.sample(-1)
    with pytest.raises(ValueError, match="Unknown classes"):
        tiny_gan.sample_from_seeds([99], [0])


def _accelerators(monkeypatch, cuda, mps, n_cuda=1):
    """Pretend this machine has (or lacks) CUDA with ``n_cuda`` devices and MPS."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n_cuda if cuda else 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize(
    "cuda, mps, expected", [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")]
)
def test_auto_device_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    from ganaug.gan import resolve_device

    _accelerators(monkeypatch, cuda, mps)
    assert resolve_device("auto") == torch.device(expected)


def test_explicit_devices_must_exist(monkeypatch):
    from ganaug.gan import resolve_device

    _accelerators(monkeypatch, cuda=False, mps=False)
    for device in ("cuda", "cuda:0", "mps"):
        with pytest.raises(ValueError, match=rf"Device '{device}' is not available on this machine; "
                                             r"use device='cpu' or 'auto'"):
            resolve_device(device)
    with pytest.raises(ValueError, match=r"Unknown device 'gpu'; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"):
        resolve_device("gpu")
    assert resolve_device("cpu") == resolve_device(torch.device("cpu")) == torch.device("cpu")
    _accelerators(monkeypatch, cuda=True, mps=True, n_cuda=2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1) and resolve_device("mps") == torch.device("mps")
    with pytest.raises(ValueError, match="Device 'cuda:2' is not available"):  # only cuda:0 and cuda:1 exist
        resolve_device("cuda:2")


def test_fit_runs_where_the_device_parameter_resolves(digits, monkeypatch):
    X, y = digits
    _accelerators(monkeypatch, cuda=False, mps=False)
    gan = ConditionalDCGAN(random_state=0, **{**TINY, "device": "auto"}).fit(X[:64], y[:64])
    assert gan.device_ == torch.device("cpu") and gan.get_params()["device"] == "auto"
    assert {p.device.type for p in gan.generator_.parameters()} == {"cpu"}
    with pytest.raises(ValueError, match="Device 'cuda' is not available on this machine"):
        ConditionalDCGAN(random_state=0, **{**TINY, "device": "cuda"}).fit(X[:64], y[:64])


def test_pickle_round_trip_keeps_sampling_and_training(digits):
    """joblib/pickle work although torch cannot pickle the spectral-normalised discriminator."""
    import pickle

    X, y = digits
    gan = ConditionalDCGAN(random_state=0, spectral_norm=True, **TINY).fit(X[:200], y[:200])
    copy = pickle.loads(pickle.dumps(gan))
    np.testing.assert_array_equal(copy.sample(6, random_state=0)[0], gan.sample(6, random_state=0)[0])
    for model in (gan, copy):
        model.set_params(max_epochs=2).fit(X[:200], y[:200], resume=True)
    assert copy.history_ == gan.history_
    np.testing.assert_array_equal(copy.sample(6, random_state=0)[0], gan.sample(6, random_state=0)[0])
