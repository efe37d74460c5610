"""Anchored latents (issue 18, item 4): inversion, the per-seed latent rule, anchored sampling."""

import numpy as np
import pytest
import torch

from ganaug import ConditionalDCGAN
from ganaug.anchors import LatentAnchors, invert


@pytest.fixture(scope="module")
def gan(digits):
    X, y = digits
    # big enough to reproduce digits (inversion has something to find), small enough for seconds
    return ConditionalDCGAN(random_state=0, max_epochs=8, width=16, latent_dim=32, verbose=False,
                            device="cpu").fit(X[:600], y[:600])


@pytest.fixture(scope="module")
def rare(digits):
    X, y = digits
    rows = np.flatnonzero(np.isin(y, [3, 7]))[:40]
    return X[rows], y[rows]


@pytest.fixture(scope="module")
def anchors(gan, rare):
    return LatentAnchors.from_real(gan, *rare, spread=0.0, steps=150)


def _to_model(images):
    return torch.as_tensor(np.asarray(images), dtype=torch.float32)[:, None] / 16 * 2 - 1


def test_inversion_brings_the_generated_images_closer_to_the_real_ones(gan, rare):
    images, labels = _to_model(rare[0]), np.searchsorted(gan.classes_, rare[1])
    _, start = invert(gan.sampling_generator_, images, labels, steps=0)
    codes, after = invert(gan.sampling_generator_, images, labels, steps=150)
    assert codes.shape == (len(labels), 32) and torch.isfinite(codes).all()
    assert after.mean() < 0.6 * start.mean()
    # the error it reports is the error of its codes
    with torch.no_grad():
        again = (gan.sampling_generator_(codes, torch.as_tensor(labels)) - images).pow(2).flatten(1).mean(1)
    np.testing.assert_allclose(again.numpy(), after, rtol=1e-4, atol=1e-6)


def test_the_weights_are_left_as_they_were(gan, rare):
    before = [p.detach().clone() for p in gan.sampling_generator_.parameters()]
    grads = [p.grad for p in gan.sampling_generator_.parameters()]
    invert(gan.sampling_generator_, _to_model(rare[0][:5]), np.searchsorted(gan.classes_, rare[1][:5]), steps=5)
    assert all(torch.equal(a, b) for a, b in zip(before, gan.sampling_generator_.parameters()))
    assert [p.grad for p in gan.sampling_generator_.parameters()] == grads


def test_anchored_samples_are_nearer_the_real_images_than_prior_samples(gan, rare, anchors):
    counts = {3: 50, 7: 50}
    anchored, labels = gan.sample(counts, random_state=1, anchors=anchors)
    prior, prior_labels = gan.sample(counts, random_state=1)
    assert labels.tolist() == prior_labels.tolist()
    X, y = rare

    def nearest(images, labels):
        return np.mean([np.min(((X[y == c] - im) ** 2).sum((1, 2))) for im, c in zip(images, labels)])

    assert nearest(anchored, labels) < 0.7 * nearest(prior, labels)


def test_each_image_depends_on_its_seed_only(gan, anchors):
    a, _ = gan.sample({3: 6, 7: 4}, random_state=5, anchors=anchors)
    b, _ = gan.sample({3: 6, 7: 4}, random_state=5, anchors=anchors, batch_size=3)
    np.testing.assert_allclose(a, b, atol=1e-5)  # convolutions sum in a batch-size-dependent order
    assert not np.array_equal(a, gan.sample({3: 6, 7: 4}, random_state=6, anchors=anchors)[0])


def test_latents_lie_between_two_codes_of_the_class_plus_spread_times_the_prior_latent(anchors):
    seeds, labels = np.arange(20), torch.full((20,), int(anchors.labels[0]))
    codes = anchors.codes[torch.as_tensor(anchors.labels == anchors.labels[0])]
    z = anchors(seeds, labels)
    # with spread 0 each latent is (1 - t) a + t b: its distance to the segment's plane is 0,
    # so it lies within the box of the class's codes
    assert (z >= codes.min(0).values - 1e-5).all() and (z <= codes.max(0).values + 1e-5).all()
    one = LatentAnchors(codes[:1], anchors.labels[:1], 0.0, anchors.mse[:1])
    assert torch.allclose(one(seeds[:3], labels[:3]), codes[:1].expand(3, -1))
    from ganaug.sampling import latents_from_seeds

    spread = LatentAnchors(codes[:1], anchors.labels[:1], 0.5, anchors.mse[:1])
    assert torch.allclose(spread(seeds[:3], labels[:3]), codes[:1] + 0.5 * latents_from_seeds(seeds[:3], 32))


def test_errors(gan, rare, anchors, digits):
    with pytest.raises(ValueError, match="No anchor codes for class indices"):
        gan.sample({1: 2}, anchors=anchors)
    with pytest.raises(ValueError, match="anchors or filter, not both"):
        gan.sample({3: 2}, anchors=anchors, filter=0.5)
    with pytest.raises(ValueError, match="spread must be a finite number >= 0"):
        LatentAnchors(anchors.codes, anchors.labels, -1.0, anchors.mse)
    with pytest.raises(ValueError, match="does not know classes"):
        LatentAnchors.from_real(gan, rare[0][:2], np.array([3, 42]))
    with pytest.raises(ValueError, match="shape"):
        LatentAnchors.from_real(gan, np.zeros((2, 12, 12)), np.array([3, 3]))
    one = LatentAnchors.from_real(gan, rare[0][rare[1] == 7][:3], np.full(3, 7), steps=2)  # one class is enough
    assert one.classes == {int(np.searchsorted(gan.classes_, 7))}
    with pytest.raises(ValueError, match="invert needs"):
        invert(gan.sampling_generator_, torch.zeros(2, 1, 8, 8), np.zeros(3, np.int64))


def test_datasets_serve_anchored_images_and_keep_their_own_disk_cache(gan, anchors, tmp_path):
    from ganaug import SyntheticDataset

    counts = {3: 4, 7: 4}
    expected, _ = gan.sample(counts, random_state=2, anchors=anchors)
    anchored = SyntheticDataset(gan, counts, random_state=2, anchors=anchors, storage="disk", cache_dir=tmp_path)
    assert np.allclose(np.stack([anchored[j][0] for j in range(8)]), expected, atol=1e-5)
    prior = SyntheticDataset(gan, counts, random_state=2, storage="disk", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 2  # not the anchored images under the prior's key
    assert not np.allclose(prior[0][0], anchored[0][0])
    with pytest.raises(ValueError, match=r"anchors has no codes of class indices \[1\]"):
        SyntheticDataset(gan, {1: 2, 3: 2}, anchors=anchors)
