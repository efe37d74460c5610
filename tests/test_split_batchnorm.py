"""Separate BatchNorm statistics for synthetic batches (issue 18, item 2)."""

import copy

import numpy as np
import pytest
import torch
from conftest import TINY
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ganaug import AugmentedDataset, ConditionalDCGAN
from ganaug.split_batchnorm import SplitBatchNorm, WithSource, split_batchnorm, split_forward, synthetic_batches


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 8 * 8, 6), nn.BatchNorm1d(6), nn.Linear(6, 3))


def test_split_replaces_every_batchnorm_and_changes_nothing_until_trained():
    original = _cnn()
    model = split_batchnorm(copy.deepcopy(original))
    assert [type(m) for m in model] == [nn.Conv2d, SplitBatchNorm, nn.ReLU, nn.Flatten, nn.Linear, SplitBatchNorm,
                                        nn.Linear]
    n_norm = sum(p.numel() for m in original.modules() if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d)
                 for p in m.parameters())
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in original.parameters()) + n_norm
    x = torch.randn(5, 1, 8, 8)
    assert torch.allclose(model(x), original(x))
    with synthetic_batches(model):
        assert torch.allclose(model(x), original(x))  # the twins start as copies


def test_split_forward_routes_each_item_and_keeps_the_order():
    model = split_batchnorm(_cnn())
    x = torch.randn(8, 1, 8, 8)
    synthetic = torch.tensor([0, 1, 1, 0, 0, 1, 0, 1], dtype=torch.bool)
    reference = copy.deepcopy(model)
    out = split_forward(model, x, synthetic)
    assert torch.allclose(out[~synthetic], reference(x[~synthetic]), atol=1e-6)  # a batch of the real items only
    with synthetic_batches(reference):
        assert torch.allclose(out[synthetic], reference(x[synthetic]), atol=1e-6)
    # Each item's statistics went to its own layers: real items moved the real running means only.
    real_only = split_batchnorm(_cnn())
    real_only(x[~synthetic])
    norm, norm_real_only = model[1], real_only[1]
    assert torch.allclose(norm.real.running_mean, norm_real_only.real.running_mean)
    assert not torch.allclose(norm.synthetic.running_mean, norm_real_only.synthetic.running_mean)
    # A gradient step reaches the twins' affine parameters only through synthetic items.
    model.zero_grad()
    split_forward(model, x, np.zeros(8, dtype=bool)).sum().backward()
    assert model[1].synthetic.weight.grad is None and model[1].real.weight.grad is not None


def test_a_part_of_one_item_uses_running_statistics():
    model = split_batchnorm(_cnn())
    x = torch.randn(5, 1, 8, 8)
    synthetic = torch.tensor([False, False, True, False, False])  # one synthetic item: a batch of one
    twin = model[5].synthetic
    before = twin.running_mean.clone()
    out = split_forward(model, x, synthetic)
    assert torch.equal(twin.running_mean, before) and twin.training  # not updated, back in training mode
    reference = copy.deepcopy(model)
    with synthetic_batches(reference):
        reference.eval()
        assert torch.allclose(out[2], reference(x[2:3])[0], atol=1e-6)


def test_evaluation_uses_the_real_layers():
    model = split_batchnorm(_cnn())
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, SplitBatchNorm):
                m.synthetic.running_mean.fill_(5.0)
    model.eval()
    x = torch.randn(3, 1, 8, 8)
    assert torch.allclose(model(x), _cnn().eval()(x))


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="no BatchNorm layer to split"):
        split_batchnorm(nn.Sequential(nn.Linear(2, 2)))
    model = split_batchnorm(_cnn())
    with pytest.raises(ValueError, match="split already"):
        split_batchnorm(model)
    with pytest.raises(ValueError, match="call split_batchnorm"):
        with synthetic_batches(_cnn()):
            pass
    with pytest.raises(ValueError, match="3 flags for 4 inputs"):
        split_forward(model, torch.randn(4, 1, 8, 8), [True, False, True])
    with pytest.raises(TypeError, match="does not say which items are synthetic"):
        WithSource(TensorDataset(torch.zeros(2, 1)))


def test_with_source_batches_carry_the_synthetic_flags_into_a_training_step(digits):
    X, y = digits
    keep = np.concatenate([np.where(y == c)[0][: (10 if c < 2 else 40)] for c in range(3)])
    gan = ConditionalDCGAN(random_state=0, **TINY).fit(X[keep], y[keep])
    real = TensorDataset(torch.from_numpy(X[keep]).float()[:, None] / 255, torch.from_numpy(y[keep]))
    train = AugmentedDataset(real, gan, random_state=0, transform=lambda im: torch.as_tensor(im, dtype=torch.float32))
    wrapped = WithSource(train)
    assert len(wrapped) == len(train)
    flags = [wrapped[i][2] for i in range(len(wrapped))]
    assert np.array_equal(flags, train.synthetic_mask) and any(flags)
    model = split_batchnorm(_cnn())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, target, synthetic = next(iter(DataLoader(wrapped, batch_size=len(wrapped), shuffle=False)))
    assert synthetic.dtype == torch.bool and synthetic.sum() == train.n_synthetic
    before = model[1].synthetic.weight.detach().clone()
    loss = nn.functional.cross_entropy(split_forward(model, x.reshape(-1, 1, 8, 8), synthetic), target.long())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert not torch.equal(model[1].synthetic.weight, before)
