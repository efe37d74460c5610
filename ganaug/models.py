"""Conditional DCGAN generator and projection discriminator, sized by arguments only.

Two architectures share these classes:

* ``"classic"``: the TensorFlow DCGAN tutorial for 28x28 digits (dense 100 -> 7*7*256,
  transposed 5x5 convolutions 256 -> 128 -> 64 -> C, BatchNorm, LeakyReLU(0.3), tanh;
  discriminator conv 64 -> conv 128 with dropout 0.3, dense 1; Glorot-uniform
  initialisation as in Keras), with class conditioning added.
* ``"dcgan"``: the same design sized from the data: any H, W >= 8, any channel count.
  The number of stride-2 stages is chosen so that the first feature map is 4-7 pixels a
  side; larger outputs are centre-cropped to (H, W). ``kernel_size`` picks the layout: an
  even kernel (4, the default from 16 pixels up) gives Radford et al.'s stride-2-only
  networks; an odd one (5, the default below 16 pixels, where a single stride-2 stage
  alone is too small a generator) adds the tutorial's stride-1 block at the base
  resolution. benchmarks/ablation.py compares the two.

Conditioning: the generator concatenates a learned class embedding to z; the
discriminator adds a projection term ``<embed(y), features>`` (Miyato & Koyama 2018) to its
unconditional logit, so its output depends on the label by construction.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm
from torch.overrides import TorchFunctionMode

from ._io import check_dataclass_fields, memory_budget

ARCHITECTURES = ("dcgan", "classic")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the two networks; stored as JSON in checkpoints.

    The defaults are the classic TensorFlow tutorial's networks; :func:`model_config` sizes
    the ``"dcgan"`` ones from the data.
    """

    n_classes: int
    channels: int
    height: int
    width: int
    latent_dim: int = 100
    embed_dim: int = 10
    g_widths: tuple[int, ...] = (256, 128, 64)
    d_widths: tuple[int, ...] = (64, 128)
    base_size: tuple[int, int] = (7, 7)
    kernel_size: int = 5
    base_block: bool = True  # a stride-1 transposed conv at the base resolution (the classic tutorial's)
    leak: float = 0.3
    dropout: float = 0.3
    spectral_norm: bool = False
    minibatch_std: bool = False  # append the batch's feature std (Karras et al. 2018) against mode collapse
    init: str = "xavier"  # "xavier" (Keras default) or "normal" (N(0, 0.02), DCGAN paper)
    arch: str = "classic"
    # Generator blocks computed before the class enters (0: it enters with z); see Generator.
    unconditional_blocks: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["g_widths"] = list(self.g_widths)
        d["d_widths"] = list(self.d_widths)
        d["base_size"] = list(self.base_size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        """Inverse of :meth:`to_dict`; missing fields take their defaults.

        Raises ValueError for unknown or missing required fields and TypeError for a
        value of the wrong kind; ``ganaug.checkpoint`` checks the values' ranges.
        """
        d = dict(d)
        if d.get("extra") == {}:
            del d["extra"]  # an unused field that checkpoints of ganaug 0.1.0 hold, always empty
        d.setdefault("embed_dim", 50)  # the code size of checkpoints saved before the field was stored
        check_dataclass_fields(cls, d, "model config")
        for name in ("g_widths", "d_widths", "base_size"):
            if name in d:
                if not isinstance(d[name], (list, tuple)):
                    raise TypeError(f"Model config field {name!r} must be a list, got {type(d[name]).__name__}.")
                d[name] = tuple(d[name])
        return cls(**d)


def model_config(
    arch: str,
    image_shape: tuple[int, int, int],
    n_classes: int,
    *,
    latent_dim: int = 100,
    width: int | None = None,
    spectral_norm: bool = False,
    minibatch_std: bool = False,
    embed_dim: int = 10,
    kernel_size: int | None = None,
    dropout: float | None = None,
    unconditional_blocks: int = 0,
) -> ModelConfig:
    """Size the networks for images of ``image_shape`` = (C, H, W).

    ``width`` is the channel count of the last generator block (and the first
    discriminator block); each stage towards the low resolution doubles it, up to 8x.
    None picks 64 for images under 16 pixels a side (one stride-2 stage) and 32 above.
    ``kernel_size`` (``"dcgan"`` only): None picks 4 for images of 16 pixels a side or
    more and 5 below; an odd kernel adds a stride-1 generator block at the base resolution.
    ``dropout`` after each discriminator block: None picks the tutorial's 0.3 for
    ``"classic"`` and none for ``"dcgan"``, whose spectral norm and DiffAugment already
    regularise the discriminator: without dropout it trained 1.4x faster on a CPU, with
    equal or better class fidelity and a lower Fréchet distance on every dataset of
    benchmarks/ablation.py (docs/measurements.md).
    ``unconditional_blocks``: generator blocks that all classes share before the class enters
    (:class:`Generator`); at most the number of blocks before the image-making one.
    """
    config = _sized_config(arch, image_shape, n_classes, latent_dim=latent_dim, width=width,
                           spectral_norm=spectral_norm, minibatch_std=minibatch_std, embed_dim=embed_dim,
                           kernel_size=kernel_size, dropout=dropout)
    limit = len(config.g_widths)  # the BatchNorm blocks: the projection, then each hidden convolution
    if not 0 <= unconditional_blocks <= limit:
        raise ValueError(
            f"unconditional_blocks={unconditional_blocks}, but this generator has {limit} blocks before the one "
            f"that makes the image; choose 0 to {limit}.")
    return replace(config, unconditional_blocks=int(unconditional_blocks))


def _sized_config(
    arch: str, image_shape: tuple[int, int, int], n_classes: int, *, latent_dim: int, width: int | None,
    spectral_norm: bool, minibatch_std: bool, embed_dim: int, kernel_size: int | None, dropout: float | None,
) -> ModelConfig:
    c, h, w = image_shape  # the estimator has checked the other arguments (ganaug.params)
    if arch == "classic":
        if (h, w) != (28, 28):
            raise ValueError(
                f'arch="classic" reproduces the 28x28 TensorFlow DCGAN; these images are {h}x{w}. '
                'Use arch="dcgan", which sizes the same design from the data.'
            )
        return ModelConfig(n_classes=n_classes, channels=c, height=h, width=w, latent_dim=latent_dim,
                           spectral_norm=spectral_norm, minibatch_std=minibatch_std, embed_dim=embed_dim,
                           dropout=0.3 if dropout is None else float(dropout))
    if arch != "dcgan":
        raise ValueError(f"Unknown arch {arch!r}; choose one of {ARCHITECTURES}.")
    stages = max(1, int(math.floor(math.log2(min(h, w) / 4))))
    if width is None:
        width = 64 if stages == 1 else 32
    if kernel_size is None:
        kernel_size = 5 if stages == 1 else 4
    base_block = kernel_size % 2 == 1
    base = (math.ceil(h / 2**stages), math.ceil(w / 2**stages))
    cap = 8 * width
    # One block per stride-2 stage (the last one's transposed conv makes the image), plus
    # the stride-1 block's input width for odd kernels.
    n_blocks = stages + 1 if base_block else stages
    g_widths = tuple(min(width * 2 ** (n_blocks - 1 - i), cap) for i in range(n_blocks))
    d_widths = tuple(min(width * 2**i, cap) for i in range(stages))
    return ModelConfig(
        n_classes=n_classes, channels=c, height=h, width=w, latent_dim=latent_dim,
        g_widths=g_widths, d_widths=d_widths, base_size=base, kernel_size=kernel_size, base_block=base_block,
        leak=0.2, dropout=0.0 if dropout is None else float(dropout), init="normal", spectral_norm=spectral_norm,
        minibatch_std=minibatch_std, embed_dim=embed_dim,
        arch="dcgan",
    )


def _init_weights(module: nn.Module, scheme: str) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if scheme == "xavier":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02 if scheme == "normal" else 1.0 / math.sqrt(m.weight.shape[1]))


class Generator(nn.Module):
    """(z, class index) -> image in [-1, 1], shape (N, C, H, W)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        k = config.kernel_size
        # Padding that makes a stride-2 transposed conv exactly double the size, for odd or even k.
        up = {"kernel_size": k, "stride": 2, "padding": (k - 1) // 2, "output_padding": k % 2, "bias": False}
        bh, bw = config.base_size
        w0 = config.g_widths[0]
        self.embed = nn.Embedding(config.n_classes, config.embed_dim)
        late = config.unconditional_blocks > 0
        self.project = nn.Sequential(
            nn.Linear(config.latent_dim + (0 if late else config.embed_dim), w0 * bh * bw, bias=False),
            nn.Unflatten(1, (w0, bh, bw)),
            nn.BatchNorm2d(w0),
            nn.LeakyReLU(config.leak),
        )
        layers: list[nn.Module] = []
        widths = config.g_widths
        if config.base_block:
            # Stride 1 at the base resolution, as in the classic tutorial; an odd kernel keeps the size.
            kb = k if k % 2 else k - 1
            layers += [nn.ConvTranspose2d(w0, widths[1], kb, 1, kb // 2, bias=False), nn.BatchNorm2d(widths[1]),
                       nn.LeakyReLU(config.leak)]
            widths = widths[1:]
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, **up), nn.BatchNorm2d(cout), nn.LeakyReLU(config.leak)]
        layers += [nn.ConvTranspose2d(widths[-1], config.channels, **up), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        if late:
            # A per-channel scale and shift of the class (as conditional BatchNorm does),
            # after the BatchNorm of block unconditional_blocks.
            self.film = nn.Linear(config.embed_dim, 2 * config.g_widths[config.unconditional_blocks - 1])
        _init_weights(self, config.init)
        # Unit-variance class codes, like z: a tiny init would drown the class in the noise.
        nn.init.normal_(self.embed.weight, 0.0, 1.0)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        k = self.config.unconditional_blocks
        if k == 0:
            x = self.body(self.project(torch.cat([z, self.embed(labels)], dim=1)))
        else:
            # UTLO-style (Khorram et al. 2024): the first k blocks are shared by all classes,
            # so a rare class gets the coarse structure learned from every class.
            layers = [*self.project, *self.body]
            x = z
            for layer in layers[: 3 * k]:  # each block is (layer, BatchNorm, activation); ends at a BatchNorm
                x = layer(x)
            scale, shift = self.film(self.embed(labels))[:, :, None, None].chunk(2, dim=1)
            x = x * (1 + scale) + shift
            for layer in layers[3 * k :]:
                x = layer(x)
        # x: (N, C, bh * 2**stages, bw * 2**stages)
        dh = (x.shape[2] - self.config.height) // 2
        dw = (x.shape[3] - self.config.width) // 2
        return x[:, :, dh : dh + self.config.height, dw : dw + self.config.width]

    def class_conditioning(self) -> torch.Tensor:
        """What the class adds to the network, one matrix per class, (n_classes, groups, size):
        group spectral regularisation (:func:`ganaug.losses.group_spectral_penalty`) acts on it.

        With the class entering with z, class c adds ``W_e e_c`` to the projection, grouped
        per channel: (w0, bh * bw). With ``unconditional_blocks``, it is the scale and shift
        of its channels, each cut into groups of about the square root of the channel count
        as Rangwani et al. do with conditional BatchNorm's parameters: (2 g, C / g).
        """
        codes = self.embed.weight  # (n_classes, embed_dim)
        if self.config.unconditional_blocks == 0:
            w = self.project[0].weight[:, self.config.latent_dim :]  # (w0 * bh * bw, embed_dim)
            return (codes @ w.T).reshape(len(codes), self.config.g_widths[0], -1)
        film = self.film(codes)  # (n_classes, 2 C)
        channels = film.shape[1] // 2
        groups = max(g for g in range(1, math.isqrt(channels) + 1) if channels % g == 0)
        return film.reshape(len(codes), 2 * groups, channels // groups)


class Discriminator(nn.Module):
    """(image, class index) -> real/fake logit, shape (N,). Projection conditioning."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        k, pad = config.kernel_size, (config.kernel_size - 1) // 2
        layers: list[nn.Module] = []
        cin, h, w = config.channels, config.height, config.width
        for cout in config.d_widths:
            # Identity keeps the layer indices (state-dict keys) the same with or without dropout.
            drop = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
            layers += [nn.Conv2d(cin, cout, k, 2, pad), nn.LeakyReLU(config.leak), drop]
            cin, h, w = cout, (h + 2 * pad - k) // 2 + 1, (w + 2 * pad - k) // 2 + 1
        if config.minibatch_std:
            layers.append(MinibatchStd())
            cin += 1
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        n_features = cin * h * w
        self.linear = nn.Linear(n_features, 1)
        self.embed = nn.Embedding(config.n_classes, n_features)
        _init_weights(self, config.init)
        if config.spectral_norm:
            # After initialisation: the parametrisation wraps the initialised weights.
            for m in list(self.modules()):
                if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
                    _spectral_norm(m)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.features(x)  # (N, F)
        return self.linear(h).squeeze(1) + (self.embed(labels) * h).sum(dim=1)


class MinibatchStd(nn.Module):
    """Append one feature map: the mean standard deviation of the features across groups of
    the batch. A collapsed generator makes this near zero, which the discriminator sees."""

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = self.group_size if n % self.group_size == 0 else n
        std = x.reshape(g, -1, c, h, w).std(dim=0, unbiased=False)  # (N/g, C, H, W)
        std = std.mean(dim=(1, 2, 3)).reshape(-1, 1, 1, 1).repeat(g, 1, h, w)  # (N, 1, H, W)
        return torch.cat([x, std], dim=1)


class _ShapesOnly(TorchFunctionMode):
    """While networks are built on the meta device, skip work whose values nobody reads.

    Random initialisation, and the power iterations that spectral normalisation runs at
    registration, have no values on the meta device but run through torch's slow Python
    reference kernels; here they only return tensors of the right shape.
    """

    _FILLS = frozenset(
        f for f in (torch.Tensor.normal_, torch.Tensor.uniform_, *(getattr(torch.nn.init, n, None) for n in (
            "normal_", "uniform_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_",
            "trunc_normal_", "orthogonal_"))) if f is not None
    )

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func in self._FILLS and (args or "tensor" in kwargs):
            return args[0] if args else kwargs["tensor"]
        if func is F.normalize and args:
            return args[0]
        if func is torch.mv and len(args) == 2 and not kwargs:
            return args[0].new_empty(args[0].shape[:1])
        if func is torch.vdot and len(args) == 2 and not kwargs:
            return args[0].new_empty(())
        return func(*args, **kwargs)


@contextlib.contextmanager
def meta_device() -> Iterator[None]:
    """Build modules on torch's meta device, quickly: shapes and dtypes, nothing allocated.

    Lets a size be checked (a checkpoint's tensors, a network that would not fit in
    memory) before anything is allocated.
    """
    with torch.device("meta"), _ShapesOnly():
        yield


def parameter_count(config: ModelConfig) -> int:
    """Parameters of both networks, counted on torch's meta device: nothing is allocated."""
    with meta_device():
        generator, discriminator = Generator(config), Discriminator(config)
    return sum(p.numel() for net in (generator, discriminator) for p in net.parameters())


# Training holds each float32 parameter about five times: weights, gradient, Adam's two
# moments, and the generator's moving average.
_BYTES_PER_PARAMETER = 4 * 5


def build_models(config: ModelConfig) -> tuple[Generator, Discriminator]:
    """The two networks for ``config``; refuses sizes that could not be trained in this machine's memory."""
    n = parameter_count(config)
    if n * _BYTES_PER_PARAMETER > memory_budget():
        raise ValueError(
            f"These settings make networks of {n:,} parameters (generator widths {list(config.g_widths)}, "
            f"discriminator widths {list(config.d_widths)}), about {n * _BYTES_PER_PARAMETER / 2**30:.1f} GiB to train, "
            f"more than half this machine's memory ({memory_budget() * 2 / 2**30:.1f} GiB). "
            "Lower width (--width) or latent_dim."
        )
    return Generator(config), Discriminator(config)
