import os

# albumentations asks PyPI for updates at import unless told not to.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = REPO.parent / "shared" / "data" / "mnist"

# Small, fast settings for tests that only need a fitted model, not a good one.
TINY = dict(width=8, latent_dim=16, max_epochs=1, batch_size=32, verbose=False, device="cpu")


@pytest.fixture(scope="session")
def digits():
    from ganaug import load_digits

    return load_digits()


@pytest.fixture(scope="session")
def mnist_dir():
    if not (MNIST_DIR / "MNIST" / "raw").is_dir():
        pytest.skip(f"MNIST data not found at {MNIST_DIR} (../shared is absent in this checkout)")
    return MNIST_DIR


@pytest.fixture(scope="session")
def tiny_gan(digits):
    from ganaug import ConditionalDCGAN

    X, y = digits
    return ConditionalDCGAN(random_state=0, **TINY).fit(X[:400], y[:400])


def make_images(n=40, shape=(12, 12), n_classes=2, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.integer):
        X = rng.integers(0, 256, size=(n, *shape)).astype(dtype)
    else:
        X = rng.random(size=(n, *shape)).astype(dtype)
    y = np.arange(n) % n_classes
    return X, y


class Bounds:
    """Peak extra resident memory and wall time of a block, for tests of hostile inputs.

    Linux only: the peak is reset through ``/proc/self/clear_refs`` (value 5) and read from
    ``VmHWM``, so allocations by numpy, torch and C libraries all count, not only Python's.
    """

    def __init__(self) -> None:
        self.extra_mb = 0.0
        self.seconds = 0.0

    @staticmethod
    def _status(field: str) -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError(f"{field} not in /proc/self/status")

    def __enter__(self) -> "Bounds":
        import gc
        import time

        gc.collect()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        self._rss0 = self._status("VmRSS")
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        import time

        self.seconds = time.perf_counter() - self._t0
        self.extra_mb = (self._status("VmHWM") - self._rss0) / 2**20


@pytest.fixture
def bounds():
    """``with bounds() as b: ...`` then assert on ``b.extra_mb`` and ``b.seconds``."""
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("memory bounds need Linux's /proc/self/clear_refs")
    return Bounds
