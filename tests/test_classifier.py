import numpy as np
import torch

from ganaug.classifier import classifier_outputs, train_classifier
from ganaug.data import as_image_data


def test_domain_classifier_learns_digits(digits):
    X, y = digits
    data = as_image_data(X, y)
    order = np.random.default_rng(0).permutation(len(X))
    train, test = order[:1200], order[1200:]
    model = train_classifier(data.images[train], data.labels[train], 10, seed=0)
    feats, probs = classifier_outputs(model, data.images[test])
    assert feats.shape == (len(test), 128) and probs.shape == (len(test), 10)
    accuracy = (probs.argmax(1) == data.labels[test]).float().mean().item()
    assert accuracy > 0.9
    again = train_classifier(data.images[train], data.labels[train], 10, seed=0)
    assert torch.equal(classifier_outputs(again, data.images[test])[1], probs)  # deterministic
