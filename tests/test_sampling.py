import numpy as np
import pytest
import torch

from ganaug.models import build_models, model_config
from ganaug.sampling import generate, iter_generate, latents_from_seeds, resolve_counts, seeds_for

CLASSES = np.array([0, 1, 2])


def test_total_is_spread_evenly():
    assert resolve_counts(10, CLASSES) == {0: 4, 1: 3, 2: 3}
    assert resolve_counts(0, CLASSES) == {0: 0, 1: 0, 2: 0}


def test_mapping_keeps_order_and_accepts_numpy_keys():
    assert list(resolve_counts({2: 5, 0: 1}, CLASSES).items()) == [(2, 5), (0, 1)]
    assert resolve_counts({np.int64(1): np.int32(3)}, CLASSES) == {1: 3}
    assert resolve_counts({"b": 2}, np.array(["a", "b"])) == {1: 2}


@pytest.mark.parametrize(
    "request_, error, match",
    [
        ({5: 1}, ValueError, r"Unknown classes \[5\]; the model knows \[0, 1, 2\]"),
        ({0: -1}, ValueError, "must be >= 0"),
        (-3, ValueError, "must be >= 0"),
        (2.5, TypeError, "must be an integer"),
        ({0: 1.5}, TypeError, "must be an integer"),
    ],
)
def test_bad_requests(request_, error, match):
    with pytest.raises(error, match=match):
        resolve_counts(request_, CLASSES)


def test_latents_depend_only_on_their_seed():
    a = latents_from_seeds([5, 6, 7], 10)
    b = latents_from_seeds([7, 5], 10)
    torch.testing.assert_close(a[0], b[1], rtol=0, atol=0)
    torch.testing.assert_close(a[2], b[0], rtol=0, atol=0)
    assert not torch.equal(a[0], a[1])
    assert seeds_for(100, 3).tolist() == [100, 101, 102]


def test_generation_is_independent_of_batching():
    torch.manual_seed(0)
    g, _ = build_models(model_config("dcgan", (1, 8, 8), 3, latent_dim=8, width=4))
    labels, seeds = np.array([0, 1, 2, 2, 1]), np.arange(5) + 40
    full = generate(g, labels, seeds, batch_size=5)
    chunks = list(iter_generate(g, labels, seeds, batch_size=2))
    assert [c.shape[0] for c in chunks] == [2, 2, 1]
    torch.testing.assert_close(torch.cat(chunks), full, atol=1e-6, rtol=0)
    one = generate(g, labels[3:4], seeds[3:4], batch_size=1)
    torch.testing.assert_close(one[0], full[3], atol=1e-6, rtol=0)
    assert g.training  # generation restores the mode it found


def test_split_synthetic_bounds_the_generated_share():
    from ganaug.sampling import real_duplicates, split_synthetic

    added, real = {"a": 0, "b": 90, "c": 5}, {"a": 100, "b": 10, "c": 95}
    assert split_synthetic(added, real, None) == (added, {"a": 0, "b": 0, "c": 0})
    assert split_synthetic(added, real, 1.5) == ({"a": 0, "b": 15, "c": 5}, {"a": 0, "b": 75, "c": 0})
    assert split_synthetic(added, real, 0) == ({"a": 0, "b": 0, "c": 0}, added)
    for bad in (-1, True, "1"):
        with pytest.raises(ValueError, match="max_synthetic_per_real"):
            split_synthetic(added, real, bad)
    labels = np.array(["a"] * 3 + ["b"] * 2)
    picks = real_duplicates(labels, {"b": 4, "a": 1}, 0)
    assert labels[picks].tolist() == ["b"] * 4 + ["a"]
    assert np.array_equal(picks, real_duplicates(labels, {"b": 4, "a": 1}, 0))
