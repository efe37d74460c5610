"""Separate BatchNorm statistics for synthetic batches, for the classifier a user trains.

Work on training with generated images (e.g. ImageNet-scale synthetic data; AdvProp's
auxiliary BatchNorm for adversarial examples, Xie et al. 2020) found that synthetic
images shift a network's BatchNorm statistics away from those of real images, and that
giving them their own BatchNorm layers lets a network use more of them. This module
does that for any torch network:

* :func:`split_batchnorm` gives every BatchNorm layer a twin (a copy of its statistics
  and affine parameters) used for synthetic images only;
* :func:`split_forward` runs a mixed batch: real items through the real layers,
  synthetic items through the twins, outputs back in the batch's order;
* :class:`WithSource` makes a dataset's items ``(image, target, is_synthetic)`` so that a
  DataLoader batch carries the flags :func:`split_forward` needs.

Evaluation (``model.eval()``, real images) uses the real layers, as before the split.

Example
-------
>>> model = split_batchnorm(my_cnn)                                        # doctest: +SKIP
>>> loader = DataLoader(WithSource(AugmentedDataset(real, gan)), batch_size=64, shuffle=True)  # doctest: +SKIP
>>> for x, y, synthetic in loader:                                         # doctest: +SKIP
...     loss = F.cross_entropy(split_forward(model, x, synthetic), y)
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import Dataset

__all__ = ["SplitBatchNorm", "WithSource", "split_batchnorm", "split_forward", "synthetic_batches"]


class SplitBatchNorm(nn.Module):
    """A BatchNorm layer (``real``) and its twin for synthetic images (``synthetic``), a
    copy made at the split; ``use_synthetic`` picks the one ``forward`` runs."""

    def __init__(self, norm: _BatchNorm) -> None:
        super().__init__()
        self.real = norm
        self.synthetic = copy.deepcopy(norm)
        self.use_synthetic = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.synthetic(x) if self.use_synthetic else self.real(x)


def split_batchnorm(model: nn.Module) -> nn.Module:
    """Replace every BatchNorm layer of ``model`` (in place) by a :class:`SplitBatchNorm`;
    returns ``model``. Make the optimiser after this call, so that it holds the twins'
    parameters. Raises ValueError for a model without BatchNorm layers or split already."""
    if any(isinstance(m, SplitBatchNorm) for m in model.modules()):
        raise ValueError("This model's BatchNorm layers are split already.")
    targets = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
               if isinstance(child, _BatchNorm)]
    if not targets:
        raise ValueError("This model has no BatchNorm layer to split; split_batchnorm is for networks with "
                         "BatchNorm (nn.BatchNorm1d/2d/3d or SyncBatchNorm).")
    for parent, name, child in targets:
        setattr(parent, name, SplitBatchNorm(child))
    return model


@contextlib.contextmanager
def synthetic_batches(model: nn.Module) -> Iterator[nn.Module]:
    """Inside the block, ``model``'s split BatchNorm layers use their synthetic twins."""
    layers = [m for m in model.modules() if isinstance(m, SplitBatchNorm)]
    if not layers:
        raise ValueError("This model has no split BatchNorm layers; call split_batchnorm(model) first.")
    for m in layers:
        m.use_synthetic = True
    try:
        yield model
    finally:
        for m in layers:
            m.use_synthetic = False


def split_forward(model: nn.Module, inputs: torch.Tensor, is_synthetic: Any) -> torch.Tensor:
    """``model(inputs)`` with real items (``is_synthetic`` false) through the real BatchNorm
    layers and synthetic items through their twins, in one output in the inputs' order.

    ``is_synthetic`` is a (N,) bool tensor or array (a :class:`WithSource` batch's third
    element). Each part is normalised as a batch of its own. A part of a single item,
    which BatchNorm cannot measure, is normalised with its layers' running statistics
    instead (and does not update them), as in evaluation.
    """
    mask = torch.as_tensor(is_synthetic, dtype=torch.bool, device=inputs.device).reshape(-1)
    if len(mask) != len(inputs):
        raise ValueError(f"is_synthetic has {len(mask)} flags for {len(inputs)} inputs.")
    if not mask.any():
        return model(inputs)
    with synthetic_batches(model), _running_statistics_for_one(model, int(mask.sum()), synthetic=True):
        synthetic = model(inputs[mask])
    if mask.all():
        return synthetic
    with _running_statistics_for_one(model, int((~mask).sum()), synthetic=False):
        real = model(inputs[~mask])
    out = real.new_empty((len(inputs), *real.shape[1:]))
    out[~mask], out[mask] = real, synthetic
    return out


@contextlib.contextmanager
def _running_statistics_for_one(model: nn.Module, n_items: int, *, synthetic: bool) -> Iterator[None]:
    """For a part of one item: its side's BatchNorm layers in evaluation mode during the block."""
    norms = [m.synthetic if synthetic else m.real for m in model.modules() if isinstance(m, SplitBatchNorm)]
    switched = [m for m in norms if m.training] if n_items == 1 else []
    for m in switched:
        m.eval()
    try:
        yield
    finally:
        for m in switched:
            m.train()


class WithSource(Dataset):
    """Items ``(image, target, is_synthetic)`` of a dataset that knows which items are
    generated (:class:`ganaug.AugmentedDataset`, :class:`ganaug.SyntheticDataset`)."""

    def __init__(self, dataset: Any) -> None:
        if not callable(getattr(dataset, "is_synthetic", None)):
            raise TypeError(f"{type(dataset).__name__} does not say which items are synthetic; wrap an "
                            "AugmentedDataset or a SyntheticDataset.")
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, Any, bool]:
        image, target = self.dataset[index]
        return image, target, self.dataset.is_synthetic(index)
