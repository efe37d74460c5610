"""A small domain classifier trained on the real images.

One network serves two jobs: its penultimate layer is the feature space of the quality
metrics (Fréchet distance, precision/recall, ...), since Inception weights cannot be
downloaded here and fit photos, not digits; its confidence filters generated samples.
It sits below both `sampling` and `metrics` in the layering.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from ._io import check_dataclass_fields

FEATURE_DIM = 128


@dataclass(frozen=True)
class ClassifierConfig:
    n_classes: int
    channels: int
    height: int
    width: int
    feature_dim: int = FEATURE_DIM

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ClassifierConfig":
        """Inverse of :meth:`to_dict`. Raises ValueError for unknown or missing fields, TypeError
        for a non-dict; ``ganaug.checkpoint`` checks the values' types and ranges."""
        check_dataclass_fields(cls, d, "classifier config")
        return cls(**d)


class DomainClassifier(nn.Module):
    """Conv net for (N, C, H, W) images in [-1, 1]: ``features`` (N, 128) and class logits."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        cin, size = config.channels, min(config.height, config.width)
        for cout in (32, 64, 128):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
            if size >= 8:  # downsample while the map is large enough to keep structure
                layers.append(nn.MaxPool2d(2))
                size //= 2
            cin = cout
        layers += [nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(cin * 4, config.feature_dim), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(config.feature_dim, config.n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    *,
    epochs: int = 8,
    batch_size: int = 128,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> DomainClassifier:
    """Train a :class:`DomainClassifier` on images in [-1, 1] (NCHW) and class indices.

    Random shifts of up to 1/8 of the image size make it judge shapes rather than exact
    pixel positions. Deterministic for a given seed (inside a forked RNG).
    """
    _, c, h, w = images.shape
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DomainClassifier(ClassifierConfig(n_classes, c, h, w)).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=2e-3, total_steps=max(1, epochs * -(-len(images) // batch_size))
        )
        rng = torch.Generator().manual_seed(seed)
        images, labels = images.to(device), labels.to(device)
        pad_h, pad_w = max(1, h // 8), max(1, w // 8)
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(len(images), generator=rng).to(device)
            for start in range(0, len(images), batch_size):
                idx = perm[start : start + batch_size]
                if len(idx) < 2:
                    continue
                x = _random_shift(images[idx], pad_h, pad_w, rng)
                loss = nn.functional.cross_entropy(model(x), labels[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    return model.eval()


def _random_shift(x: torch.Tensor, pad_h: int, pad_w: int, rng: torch.Generator) -> torch.Tensor:
    padded = nn.functional.pad(x, (pad_w, pad_w, pad_h, pad_h), value=-1.0)
    dy = int(torch.randint(0, 2 * pad_h + 1, (1,), generator=rng))
    dx = int(torch.randint(0, 2 * pad_w + 1, (1,), generator=rng))
    return padded[:, :, dy : dy + x.shape[2], dx : dx + x.shape[3]]


@torch.no_grad()
def classifier_outputs(
    model: DomainClassifier, images: torch.Tensor, *, batch_size: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, 128), class probabilities (N, K)) on the CPU, in batches."""
    device = next(model.parameters()).device
    feats, probs = [], []
    for start in range(0, len(images), batch_size):
        f = model.features(images[start : start + batch_size].to(device))
        feats.append(f.cpu())
        probs.append(torch.softmax(model.head(f), dim=1).cpu())
    if not feats:
        return torch.empty(0, model.config.feature_dim), torch.empty(0, model.config.n_classes)
    return torch.cat(feats), torch.cat(probs)
