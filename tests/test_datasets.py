import functools

import numpy as np
import pytest
import torch
from conftest import TINY
from PIL import Image
from torch.utils.data import DataLoader, Subset, TensorDataset

from ganaug import ConditionalDCGAN, datasets
from ganaug.datasets import SyntheticDataset, dataset_targets

# These tests are about the synthetic items: every added item is synthetic unless a test
# passes a cap. The default cap has its own test (test_the_default_cap_...).
AugmentedDataset = functools.partial(datasets.AugmentedDataset, max_synthetic_per_real=None)

# Digits with classes 3 and 7 cut to 20 images and 5 to 60; the others keep 100.
CUT = {3: 20, 7: 20, 5: 60}


@pytest.fixture(scope="module")
def imbalanced(digits):
    X, y = digits
    keep = np.concatenate([np.where(y == c)[0][: CUT.get(c, 100)] for c in range(10)])
    return X[keep], y[keep]


@pytest.fixture(scope="module")
def gan(imbalanced):
    X, y = imbalanced
    return ConditionalDCGAN(random_state=0, **TINY).fit(X, y)


@pytest.fixture(scope="module")
def real(imbalanced):
    X, y = imbalanced
    return TensorDataset(torch.from_numpy(X), torch.from_numpy(y))


REAL_COUNTS = {c: CUT.get(c, 100) for c in range(10)}


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({}, {c: 100 - n for c, n in REAL_COUNTS.items()}),
        ({"sampling_strategy": "not majority"}, {c: 100 - n for c, n in REAL_COUNTS.items()}),
        ({"sampling_strategy": "minority"}, {**{c: 0 for c in range(10)}, 3: 80}),
        # imbalanced-learn picks the first minority class (3), so 'not minority' spares only it.
        ({"sampling_strategy": "not minority"}, {**{c: 100 - n for c, n in REAL_COUNTS.items()}, 3: 0}),
        ({"sampling_strategy": "all"}, {c: 100 - n for c, n in REAL_COUNTS.items()}),
        ({"sampling_strategy": {3: 50, 7: 20}}, {**{c: 0 for c in range(10)}, 3: 30}),
        ({"sampling_strategy": lambda y: {5: 61}}, {**{c: 0 for c in range(10)}, 5: 1}),
        ({"ratio": 0.5}, {c: n // 2 for c, n in REAL_COUNTS.items()}),
    ],
)
def test_class_counts_follow_the_strategy_exactly(real, gan, kwargs, expected):
    ds = AugmentedDataset(real, gan, random_state=0, **kwargs)
    assert ds.synthetic_counts == expected
    assert ds.class_counts == REAL_COUNTS
    totals = np.bincount(ds.targets, minlength=10)
    assert totals.tolist() == [REAL_COUNTS[c] + expected[c] for c in range(10)]
    # The labels served match the targets, synthetic items included.
    served = [ds[i][1].item() for i in range(ds.n_real, len(ds))]
    assert np.bincount(served, minlength=10).tolist() == [expected[c] for c in range(10)]


def test_float_strategy_on_two_classes(digits):
    X, y = digits
    keep = np.concatenate([np.where(y == 0)[0][:80], np.where(y == 1)[0][:20]])
    gan2 = ConditionalDCGAN(random_state=0, **TINY).fit(X[keep], y[keep])
    real2 = TensorDataset(torch.from_numpy(X[keep]), torch.from_numpy(y[keep]))
    ds = AugmentedDataset(real2, gan2, sampling_strategy=0.5, random_state=0)
    assert ds.synthetic_counts == {0: 0, 1: 20}


def test_synthetic_mask_and_item_types(real, gan):
    ds = AugmentedDataset(real, gan, random_state=0)
    assert ds.synthetic_mask.sum() == ds.n_synthetic == len(ds) - len(real)
    assert not ds.synthetic_mask[: len(real)].any()
    assert [ds.is_synthetic(i) for i in (0, len(real) - 1, len(real), -1)] == [False, False, True, True]
    real_img, real_label = ds[0]
    fake_img, fake_label = ds[len(ds) - 1]
    assert isinstance(fake_img, torch.Tensor) and fake_img.shape == real_img.shape == (8, 8)
    assert fake_img.dtype == real_img.dtype and 0 <= fake_img.min() and fake_img.max() <= 1
    assert type(fake_label) is type(real_label) and fake_label.dtype == real_label.dtype
    torch.testing.assert_close(real_img, real[0][0])
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_synthetic_mask_marks_exactly_the_generated_items(real, gan):
    ds = AugmentedDataset(real, gan, random_state=4)
    mask = ds.synthetic_mask
    assert mask.dtype == bool and mask.shape == (len(ds),)
    assert [ds.is_synthetic(i) for i in range(len(ds))] == mask.tolist()
    assert [ds.is_synthetic(i - len(ds)) for i in range(len(ds))] == mask.tolist()  # negative indices too
    # Unmasked items are the real dataset's, in order ...
    assert np.flatnonzero(~mask).tolist() == list(range(len(real)))
    for i in np.flatnonzero(~mask)[::37]:
        assert torch.equal(ds[i][0], real[i][0]) and ds[i][1] == real[i][1]
    # ... and masked ones the GAN's images of their labels, one seed each from random_state on.
    fake = np.flatnonzero(mask)
    images = np.stack([ds[i][0].numpy() for i in fake])
    np.testing.assert_allclose(images, gan.sample_from_seeds(ds.targets[fake], 4 + np.arange(len(fake))), atol=1e-6)
    for bad in (len(ds), -len(ds) - 1):
        with pytest.raises(IndexError, match=f"index {bad} out of range for {len(ds)} items"):
            ds.is_synthetic(bad)


def _items(ds, num_workers):
    loader = DataLoader(ds, batch_size=37, shuffle=False, num_workers=num_workers)
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


@pytest.mark.parametrize("storage", ["memory", "lazy"])
def test_same_items_for_any_worker_count_and_access_order(real, gan, storage):
    ds = AugmentedDataset(real, gan, random_state=3, storage=storage, chunk_size=16)
    x0, y0 = _items(ds, 0)
    x2, y2 = _items(ds, 2)
    assert torch.equal(x0, x2) and torch.equal(y0, y2)
    backwards = torch.stack([ds[i][0] for i in reversed(range(len(ds)))]).flip(0)
    assert torch.equal(backwards, x0)
    fresh = AugmentedDataset(real, gan, random_state=3, storage="memory")
    assert torch.equal(_items(fresh, 0)[0], x0)  # lazy and memory serve the same images


def test_same_items_after_reload(real, gan, tmp_path):
    gan.save(tmp_path / "c")
    loaded = ConditionalDCGAN.load(tmp_path / "c", device="cpu")
    a = AugmentedDataset(real, gan, random_state=5)
    b = AugmentedDataset(real, loaded, random_state=5)
    assert torch.equal(_items(a, 0)[0], _items(b, 0)[0])


def test_epochs_give_fresh_samples_and_can_be_revisited(real, gan):
    ds = AugmentedDataset(real, gan, random_state=0)
    first = ds[len(ds) - 1][0]
    ds.resample()
    assert ds.epoch == 1 and not torch.equal(ds[len(ds) - 1][0], first)
    assert torch.equal(ds[0][0], real[0][0])  # real items never change
    ds.set_epoch(0)
    assert torch.equal(ds[len(ds) - 1][0], first)


def test_disk_storage_streams_to_a_reused_cache(real, gan, tmp_path):
    ds = AugmentedDataset(real, gan, random_state=0, storage="disk", cache_dir=tmp_path)
    files = list(tmp_path.glob("ganaug-synthetic-*.npy"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    again = AugmentedDataset(real, gan, random_state=0, storage="disk", cache_dir=tmp_path)
    assert files[0].stat().st_mtime_ns == mtime  # reused, not regenerated
    memory = AugmentedDataset(real, gan, random_state=0)
    torch.testing.assert_close(_items(again, 2)[0], _items(memory, 0)[0], atol=1e-6, rtol=0)
    assert len(ds) == len(memory)


def test_transforms_of_every_kind(real, gan):
    import albumentations as A
    import torchvision.transforms.v2 as T

    calls = []

    def plain(img):
        calls.append(type(img))
        return img * 0 + 0.5

    album = A.Compose([A.HorizontalFlip(p=1.0)])
    ds = AugmentedDataset(real, gan, random_state=0, transform=album)
    img, _ = ds[len(ds) - 1]
    raw = AugmentedDataset(real, gan, random_state=0)[len(ds) - 1][0].numpy()
    assert isinstance(img, np.ndarray) and np.array_equal(img, raw[:, ::-1])
    ds = AugmentedDataset(real, gan, random_state=0, transform=T.RandomHorizontalFlip(p=1.0))
    assert torch.equal(ds[len(ds) - 1][0], torch.from_numpy(raw[:, ::-1].copy()))
    ds = AugmentedDataset(real, gan, random_state=0, transform=plain, target_transform=lambda t: int(t) + 100)
    img, label = ds[len(ds) - 1]
    assert calls == [torch.Tensor] and torch.all(img == 0.5) and label >= 100


class _NamedPilDataset(torch.utils.data.Dataset):
    """Like torchvision's datasets: PIL items, integer targets, class names in `classes`."""

    def __init__(self, n=30):
        rng = np.random.default_rng(0)
        self.images = rng.integers(0, 256, (n, 12, 12), dtype=np.uint8)
        self.targets = (np.arange(n) % 3).tolist()
        self.classes = ["cat", "dog", "emu"]

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return Image.fromarray(self.images[i], "L"), self.targets[i]


def test_pil_dataset_with_gan_trained_on_class_names():
    import torchvision.transforms.v2 as T

    ds = _NamedPilDataset()
    names = np.asarray(ds.classes)[np.asarray(ds.targets)]
    gan = ConditionalDCGAN(random_state=0, **TINY).fit(ds.images, names)  # classes_ are names
    aug = AugmentedDataset(ds, gan, ratio=1.0, random_state=0,
                           transform=T.Compose([T.ToImage(), T.ToDtype(torch.float32, scale=True)]))
    assert aug.synthetic_counts == {0: 10, 1: 10, 2: 10}
    img, label = aug[len(aug) - 1]
    assert img.shape == (1, 12, 12) and img.dtype == torch.float32 and type(label) is int and label == 2
    assert aug.classes == ["cat", "dog", "emu"]
    raw = AugmentedDataset(ds, gan, ratio=1.0, random_state=0)
    assert isinstance(raw[len(raw) - 1][0], Image.Image) and raw[len(raw) - 1][0].mode == "L"


def test_imagefolder_and_subset(tmp_path):
    from torchvision.datasets import ImageFolder

    rng = np.random.default_rng(0)
    for cls, n in (("a", 12), ("b", 4)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (10, 10), dtype=np.uint8), "L").save(tmp_path / cls / f"{i}.png")
    folder = ImageFolder(tmp_path, loader=lambda p: Image.open(p).convert("L"))
    gan = ConditionalDCGAN(random_state=0, **TINY).fit(tmp_path)  # trained on folder names
    aug = AugmentedDataset(folder, gan, random_state=0)
    assert aug.synthetic_counts == {0: 0, 1: 8} and aug.classes == ["a", "b"]
    assert aug[len(aug) - 1][1] == 1 and isinstance(aug[len(aug) - 1][0], Image.Image)
    sub = Subset(folder, list(range(10)) + [12, 13])
    assert dataset_targets(sub).tolist() == [0] * 10 + [1, 1]
    aug = AugmentedDataset(sub, gan, random_state=0)
    assert aug.synthetic_counts == {0: 0, 1: 8}


def test_synthetic_dataset(gan):
    ds = SyntheticDataset(gan, {3: 5, 7: 2}, random_state=1)
    assert len(ds) == 7 and ds.targets.tolist() == [3] * 5 + [7] * 2
    img, label = ds[6]
    assert isinstance(img, np.ndarray) and img.shape == (8, 8) and img.dtype == np.float32 and label == 7
    np.testing.assert_allclose(img, gan.sample_from_seeds([7], [1 + 6])[0], atol=1e-6)
    assert ds.synthetic_mask.tolist() == [True] * 7
    assert all(ds.is_synthetic(i) for i in range(-7, 7))
    for bad in (7, -8, 100):  # like item access: out of range is an IndexError, not "synthetic"
        with pytest.raises(IndexError, match=f"index {bad} out of range for 7 synthetic items"):
            ds.is_synthetic(bad)
        with pytest.raises(IndexError, match=f"index {bad} out of range"):
            ds[bad]
    pil = SyntheticDataset(gan, 20, image_format="pil", random_state=1)
    assert isinstance(pil[0][0], Image.Image) and pil[0][0].mode == "L"
    assert np.bincount(pil.targets).tolist() == [2] * 10
    tensor = SyntheticDataset(gan, 4, image_format="tensor")
    assert tensor[0][0].shape == (1, 8, 8)


def test_training_loop_over_the_wrapper(real, gan):
    import albumentations as A
    from albumentations.pytorch import ToTensorV2

    ds = AugmentedDataset(real, gan, random_state=0,
                          transform=A.Compose([A.Affine(rotate=(-10, 10), p=1.0), ToTensorV2()]))
    loader = DataLoader(ds, batch_size=64, shuffle=True, num_workers=2, pin_memory=False)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = 0
    for xb, yb in loader:
        assert xb.shape[1:] == (1, 8, 8)  # ToTensorV2 turns (H, W) into (1, H, W)
        loss = torch.nn.functional.cross_entropy(model(xb.float()), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen += len(xb)
    assert seen == len(ds) and torch.isfinite(loss)


def test_errors(real, gan, digits):
    X, _ = digits
    with pytest.raises(ValueError, match="Give either sampling_strategy or ratio"):
        AugmentedDataset(real, gan, sampling_strategy="minority", ratio=1.0)
    with pytest.raises(ValueError, match="greater or equal to the original number"):
        AugmentedDataset(real, gan, sampling_strategy={3: 5})
    with pytest.raises(ValueError, match="ratio must be a number >= 0"):
        AugmentedDataset(real, gan, ratio=-1)
    with pytest.raises(ValueError, match=r"must be >= 0"):
        SyntheticDataset(gan, {3: -1})
    with pytest.raises(ValueError, match="not .image, label. pairs"):
        AugmentedDataset(TensorDataset(torch.from_numpy(X[:10])), gan)
    big = TensorDataset(torch.rand(10, 1, 12, 12), torch.arange(10))
    with pytest.raises(ValueError, match=r"makes images of shape \(1, 8, 8\).*\(1, 12, 12\)"):
        AugmentedDataset(big, gan)
    other = TensorDataset(torch.from_numpy(X[:10]), torch.arange(10) + 50)
    with pytest.raises(ValueError, match="labels .*50.* that it does not know"):
        AugmentedDataset(other, gan)
    with pytest.raises(ValueError, match="needs cache_dir"):
        AugmentedDataset(real, gan, storage="disk")
    with pytest.raises(ValueError, match="storage must be one of"):
        AugmentedDataset(real, gan, storage="cloud")
    with pytest.raises(TypeError, match="must be a ConditionalDCGAN"):
        SyntheticDataset("runs/x", 3)
    with pytest.raises(Exception, match="not fitted"):
        SyntheticDataset(ConditionalDCGAN(), 3)


@pytest.mark.parametrize("cap", [0.0, 0.5, 2.0])
def test_a_synthetic_cap_fills_the_rest_with_copies_of_real_items(real, gan, cap):
    ds = AugmentedDataset(real, gan, random_state=0, max_synthetic_per_real=cap)
    added = {c: 100 - n for c, n in REAL_COUNTS.items()}
    assert ds.synthetic_counts == {c: min(added[c], round(cap * n)) for c, n in REAL_COUNTS.items()}
    assert {c: ds.synthetic_counts[c] + ds.copy_counts[c] for c in added} == added  # totals as without a cap
    assert np.bincount(ds.targets, minlength=10).tolist() == [100] * 10
    assert ds.synthetic_mask.sum() == ds.n_synthetic == sum(ds.synthetic_counts.values())
    assert len(ds) == ds.n_real + ds.n_copies + ds.n_synthetic
    images = real.tensors[0]
    for i in range(ds.n_real, ds.n_real + ds.n_copies):  # copies: real images of their own class
        image, label = ds[i]
        assert not ds.is_synthetic(i)
        assert (images == image).flatten(1).all(1).any()
        assert label.item() == ds.targets[i]
    if ds.n_synthetic:
        assert ds.is_synthetic(len(ds) - 1)


def test_the_default_cap_is_one_synthetic_item_per_real_item(real, gan):
    ds = datasets.AugmentedDataset(real, gan, random_state=0)
    added = {c: 100 - n for c, n in REAL_COUNTS.items()}
    assert ds.synthetic_counts == {c: min(added[c], n) for c, n in REAL_COUNTS.items()}
    assert np.bincount(ds.targets, minlength=10).tolist() == [100] * 10  # balanced like random oversampling
    assert ds.n_copies == sum(added.values()) - ds.n_synthetic > 0


def test_sampler_draws_a_fixed_synthetic_share_of_each_class(real, gan):
    ds = AugmentedDataset(real, gan, random_state=0)  # every added item synthetic
    drawn = np.array(list(ds.sampler(0.25, num_samples=100_000, generator=torch.Generator().manual_seed(0))))
    synthetic, targets = ds.synthetic_mask[drawn], ds.targets[drawn]
    for c in range(10):
        share = synthetic[targets == c].mean()
        assert (abs(share - 0.25) < 0.02) if CUT.get(c) else share == 0  # full classes get no synthetic items
        # each class keeps its share of the draws: the balance the dataset was built for
        assert abs((targets == c).mean() - (ds.targets == c).mean()) < 0.01
    again = list(ds.sampler(0.25, num_samples=50, generator=torch.Generator().manual_seed(0)))
    assert again == drawn[:50].tolist()
    assert len(ds.sampler(0.5)) == len(ds)
    real_only = np.array(list(ds.sampler(0.0, num_samples=2000)))
    assert not ds.synthetic_mask[real_only].any()


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan"), True, "half"])
def test_sampler_rejects_a_share_outside_0_1(real, gan, share):
    ds = AugmentedDataset(real, gan, random_state=0)
    with pytest.raises(ValueError, match=r"synthetic_share must be a number in \[0, 1\]"):
        ds.sampler(share)
