import dataclasses

import numpy as np
import pytest
import torch
from conftest import TINY
from scipy import linalg

from ganaug import ConditionalDCGAN
from ganaug.metrics import (
    MetricInputs,
    TrainingMonitor,
    class_fidelity,
    density_coverage,
    density_coverage_scores,
    evaluate_generator,
    format_report,
    frechet_distance,
    judge_accuracy,
    precision_recall,
    precision_recall_scores,
    stratified_subsample,
)


def _reference_fd(a, b):
    """The textbook formula with scipy's sqrtm, in float64."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_frechet_identical_sets_is_zero():
    x = np.random.default_rng(0).normal(size=(500, 8))
    assert abs(frechet_distance(x, x)) < 1e-8


def test_frechet_matches_float64_reference_and_closed_form():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4000, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(loc=0.5, size=(4000, 6)) @ rng.normal(size=(6, 6))
    assert frechet_distance(a, b) == pytest.approx(_reference_fd(a, b), rel=1e-6)
    # Two diagonal Gaussians: |mu1 - mu2|^2 + sum (sigma1 - sigma2)^2.
    sd1, sd2, shift = np.array([1.0, 2.0, 0.5]), np.array([2.0, 1.0, 0.5]), np.array([1.0, 0.0, -2.0])
    a = rng.normal(size=(200_000, 3)) * sd1
    b = rng.normal(size=(200_000, 3)) * sd2 + shift
    expected = (shift**2).sum() + ((sd1 - sd2) ** 2).sum()
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.02)


def test_frechet_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(N, D\) and \(M, D\)"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))


def test_precision_recall_density_coverage_identical_and_disjoint():
    x = np.random.default_rng(0).normal(size=(300, 4))
    assert precision_recall(x, x) == (1.0, 1.0)
    assert density_coverage(x, x)[1] == 1.0
    # For an independent sample of the same distribution, density is about 1 and coverage
    # about 1 - 2**-k (Naeem et al. 2020).
    same = np.random.default_rng(1).normal(size=(3000, 4))
    density, coverage = density_coverage(np.random.default_rng(2).normal(size=(3000, 4)), same)
    assert density == pytest.approx(1.0, abs=0.1) and coverage == pytest.approx(1 - 2**-5, abs=0.03)
    far = x + 100.0
    assert precision_recall(x, far) == (0.0, 0.0)
    assert density_coverage(x, far) == (0.0, 0.0)


def test_precision_without_recall_for_a_collapsed_generator():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 2))
    collapsed = rng.normal(scale=0.05, size=(400, 2))  # all fakes in one tight spot of the real mass
    precision, recall = precision_recall(real, collapsed)
    assert precision > 0.95 and recall < 0.2
    _, coverage = density_coverage(real, collapsed)
    assert coverage < 0.2


class _LogitJudge(torch.nn.Module):
    """A judge whose "images" are its logits, so that its verdicts are known by construction."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))  # classifier_outputs reads the device from one

    def features(self, x):
        return x.flatten(1)

    def head(self, f):
        return f


def _hand_made_inputs():
    def logits(predicted):  # (N, 3): class `p` wins
        return torch.nn.functional.one_hot(torch.tensor(predicted), 3).float() * 5

    real, fake = logits([0, 0, 1, 1, 0, 2]), logits([0, 1, 0, 0])
    return MetricInputs(
        classes=["a", "b", "c"], judge=_LogitJudge(), features_of=_LogitJudge(),
        real=real, real_labels=np.array([0, 0, 0, 1, 1, 2]), real_features=real,
        fake=fake, fake_labels=np.array([0, 1, 1, 2]), fake_features=fake,
        fake_probs=torch.softmax(fake, dim=1), seed=0,
    )


def test_accuracies_on_a_hand_made_input():
    m = _hand_made_inputs()
    # Real: class a right 2 of 3, b 1 of 2, c 1 of 1; overall 4 of 6 (weighted by class size,
    # not the mean of the per-class accuracies, which is 13/18).
    assert judge_accuracy(m) == {"real_accuracy": 4 / 6, "real_accuracy_per_class": {"a": 2 / 3, "b": 0.5, "c": 1.0}}
    # Fakes of a, b, b, c judged a, b, a, a: a 1 of 1, b 1 of 2, c 0 of 1; overall 2 of 4.
    assert class_fidelity(m) == {"class_fidelity": {"a": 1.0, "b": 0.5, "c": 0.0}, "class_fidelity_mean": 0.5}
    # Five real images are too few for k=5 neighbourhoods: None, not an error; k=3 is measured.
    few = dataclasses.replace(m, real=m.real[:5], real_labels=m.real_labels[:5], real_features=m.real_features[:5])
    assert density_coverage_scores(few) == {"density": None, "coverage": None}
    assert density_coverage_scores(m)["density"] is not None and precision_recall_scores(few)["precision"] is not None


def test_stratified_subsample():
    labels = np.array([1, 0, 1, 1, 2, 0, 1, 2, 2, 2, 2])
    keep = stratified_subsample(labels, 2, seed=0)
    assert (np.diff(keep) > 0).all() and np.bincount(labels[keep]).tolist() == [2, 2, 2]
    assert np.array_equal(keep, stratified_subsample(labels, 2, seed=0))
    assert np.array_equal(stratified_subsample(labels, 9, seed=3), np.arange(len(labels)))  # fewer than 9: all


@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits
    # Good enough that every class can pass a modest filter.
    gan = ConditionalDCGAN(random_state=0, max_epochs=30, verbose=False, device="cpu").fit(X[:600], y[:600])
    return gan, X, y


def test_evaluate_generator_report(fitted):
    gan, X, y = fitted
    report = evaluate_generator(gan, X[600:900], y[600:900], train_X=X[:600], train_y=y[:600], cas_epochs=2)
    for key in ("fid", "fid_floor", "precision", "recall", "density", "coverage", "class_fidelity_mean", "cas",
                "cas_real_baseline", "real_accuracy"):
        assert np.isfinite(report[key]), key
    assert report["fid_floor"] > 0 and report["fid_ratio"] == pytest.approx(report["fid"] / report["fid_floor"])
    assert 0 <= report["precision"] <= 1 and 0 <= report["coverage"] <= 1
    assert set(report["class_fidelity"]) == {str(c) for c in range(10)}
    assert report["real_accuracy"] > 0.8  # the domain classifier works on real digits
    per_class = report["real_accuracy_per_class"]
    assert set(per_class) == set(report["class_fidelity"]) and all(0 <= a <= 1 for a in per_class.values())
    assert report["n_fake"] == report["n_real_floor"]
    mem = report["memorisation"]
    assert mem["reference"] == "training images" and 0 <= mem["near_copy_fraction"] <= 1
    text = format_report(report)
    assert "Fréchet distance" in text and "CAS" in text and "near-copies" in text and "judge on real" in text
    import json

    json.dumps(report)  # JSON-serialisable


def test_evaluate_generator_with_custom_features_and_errors(fitted):
    gan, X, y = fitted
    flat = evaluate_generator(gan, X[600:800], y[600:800], feature_extractor=lambda t: t.flatten(1), cas_epochs=1)
    assert flat["feature_space"] == "custom" and flat["fid"] >= 0
    with pytest.raises(ValueError, match="the GAN makes"):
        evaluate_generator(gan, np.zeros((20, 9, 9)), np.arange(20) % 2)
    with pytest.raises(ValueError, match="does not know"):
        evaluate_generator(gan, X[:20], np.arange(20) // 2 + 100)


def test_training_monitor_records_without_changing_training(digits):
    X, y = digits
    X, y = X[:400], y[:400]  # 12 steps per epoch at batch 32
    monitor = TrainingMonitor(X, y, n_per_class=10)
    params = dict(TINY, max_epochs=3)
    watched = ConditionalDCGAN(random_state=0, **params).fit(X, y, monitor=monitor, monitor_every=5)
    assert [r["step"] for r in monitor.records] == [5, 10, 15, 20, 25, 30, 35]
    assert [r["epoch"] for r in monitor.records] == [1, 1, 2, 2, 3, 3, 3]
    for r in monitor.records:
        assert 0 <= r["class_fidelity"] <= 1 and r["fid"] >= 0
        assert all(0 <= r[k] <= 1 for k in ("precision", "recall", "coverage"))
    plain = ConditionalDCGAN(random_state=0, **params).fit(X, y)
    assert watched.history_ == plain.history_  # the monitor draws nothing from the training RNG
    torch.testing.assert_close(watched.sample(20, random_state=1, output="tensor")[0],
                               plain.sample(20, random_state=1, output="tensor")[0], rtol=0, atol=0)


def test_training_monitor_sees_collapse(fitted):
    gan, X, y = fitted
    monitor = TrainingMonitor(X[600:], y[600:], n_per_class=20)
    healthy = monitor(gan, gan._state)
    original = gan.sampling_generator_.forward
    one_image = original(torch.zeros(1, gan.latent_dim), torch.zeros(1, dtype=torch.long))
    try:
        # Every z and class gives the same image: fidelity and recall must collapse.
        gan.sampling_generator_.forward = lambda z, labels: one_image.expand(len(z), -1, -1, -1)
        broken = monitor(gan, gan._state)
    finally:
        gan.sampling_generator_.forward = original
    assert broken["class_fidelity"] <= 0.2 < healthy["class_fidelity"]
    assert broken["recall"] < 0.05 < healthy["recall"]
    assert broken["coverage"] < healthy["coverage"]
    assert broken["fid"] > healthy["fid"]
    with pytest.raises(ValueError, match="at least 6"):
        TrainingMonitor(X, y, n_per_class=3)


def test_filter_gives_exact_counts_of_confident_samples(fitted):
    gan, _, _ = fitted
    from ganaug.classifier import classifier_outputs

    # The two classes this short-trained model makes best, so that the filter can fill them.
    probe, probe_labels = gan.sample(100, random_state=9, output="tensor")
    _, probe_probs = classifier_outputs(gan.classifier_, probe)
    hits = probe_probs[torch.arange(100), torch.as_tensor(probe_labels)] >= 0.3
    a, b = sorted(range(10), key=lambda c: -hits[torch.as_tensor(probe_labels) == c].sum().item())[:2]
    images, labels = gan.sample({a: 7, b: 5}, filter=0.3, random_state=0, output="tensor")
    assert labels.tolist() == [a] * 7 + [b] * 5
    _, probs = classifier_outputs(gan.classifier_, images)
    assert (probs[torch.arange(12), torch.as_tensor(labels)] >= 0.3).all()
    assert set(gan.acceptance_rate_) == {a, b} and all(0 < r <= 1 for r in gan.acceptance_rate_.values())
    again, _ = gan.sample({a: 7, b: 5}, filter=0.3, random_state=0, output="tensor")
    assert torch.equal(images, again)
    with pytest.raises(ValueError, match="passed filter=1.0"):
        gan.sample({a: 3}, filter=1.0)
    with pytest.raises(ValueError, match="filter must be a probability"):
        gan.sample({a: 3}, filter=1.5)


def test_filter_needs_a_classifier(digits):
    X, y = digits
    gan = ConditionalDCGAN(random_state=0, train_classifier=False, **TINY).fit(X[:100], y[:100])
    assert gan.classifier_ is None
    with pytest.raises(ValueError, match="train_classifier=True"):
        gan.sample(3, filter=0.5)


def test_write_report(fitted, tmp_path):
    from PIL import Image

    from ganaug.report import write_report

    gan, X, y = fitted
    paths = write_report(gan, X[600:800], y[600:800], tmp_path / "r", train_X=X[:600], train_y=y[:600], cas_epochs=1)
    import json

    assert json.loads(paths["report"].read_text())["fid_floor"] > 0
    for key in ("samples", "nearest", "losses"):
        assert Image.open(paths[key]).size[0] > 50
