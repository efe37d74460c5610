"""ganaug.export from Python: a generated set on disk, its manifest, and that it regenerates."""

import csv

import numpy as np
import pytest
from conftest import TINY
from PIL import Image

from ganaug import ConditionalDCGAN
from ganaug.export import MANIFEST, export_samples


@pytest.fixture(scope="module")
def gan(digits):
    X, y = digits
    return ConditionalDCGAN(**TINY, train_classifier=False, random_state=0).fit(X[:200], y[:200])


def rows(out):
    with open(out / MANIFEST, newline="") as f:
        return list(csv.DictReader(f))


def test_image_folder_with_a_manifest_that_regenerates(tmp_path, gan):
    out = tmp_path / "set"
    result = export_samples(gan, out, {5: 2, 0: 3}, seed=7, batch_size=2, model_sha256="abc")
    assert result["total"] == 5 and result["counts"] == {"0": 3, "5": 2}  # in the model's class order
    manifest = rows(out)
    assert [r["file"] for r in manifest] == ["0/000000.png", "0/000001.png", "0/000002.png",
                                             "5/000003.png", "5/000004.png"]
    assert [int(r["seed"]) for r in manifest] == list(range(7, 12))  # one seed per image, contiguous
    assert {r["model_sha256"] for r in manifest} == {"abc"}
    again = gan.sample_from_seeds([int(r["class"]) for r in manifest], [int(r["seed"]) for r in manifest])
    for row, image in zip(manifest, again):  # digits are floats in [0, 1]; the PNGs hold 8 bits
        np.testing.assert_array_equal(np.asarray(Image.open(out / row["file"])), np.rint(image * 255))
    assert not list(tmp_path.glob("set.partial-*"))


def test_npz_holds_x_and_y_like_the_training_data(tmp_path, gan):
    out = tmp_path / "set"
    export_samples(gan, out, {c: 2 for c in gan.classes_}, format="npz", seed=3, batch_size=3)
    with np.load(out / "samples.npz") as f:
        X, y = f["X"], f["y"]
    assert X.shape == (20, 8, 8) and y.tolist() == [c for c in range(10) for _ in range(2)]
    manifest = rows(out)
    assert [int(r["file"]) for r in manifest] == list(range(20))
    # Floats, so the batch size (3 here, 512 below) may move the last bit.
    again = gan.sample_from_seeds(y.tolist(), [int(r["seed"]) for r in manifest])
    np.testing.assert_allclose(again, X, rtol=0, atol=1e-6)


def test_replaces_only_a_set_it_wrote(tmp_path, gan):
    out = tmp_path / "set"
    export_samples(gan, out, {1: 1})
    with pytest.raises(FileExistsError, match="not empty"):
        export_samples(gan, out, {1: 2})
    assert export_samples(gan, out, {1: 2}, force=True)["total"] == 2 and len(rows(out)) == 2
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not written by ganaug"):
        export_samples(gan, mine, {1: 1}, force=True)
    assert (mine / "notes.txt").read_text() == "keep"


@pytest.mark.parametrize("counts, kwargs, message", [
    ({"cat": 1}, {}, "Unknown classes"),
    ({1: 1}, {"format": "tiff"}, "format must be one of"),
    ({1: 3}, {"seed": 2**63 - 2}, "too large"),
])
def test_refuses_bad_requests_before_writing(tmp_path, gan, counts, kwargs, message):
    with pytest.raises(ValueError, match=message):
        export_samples(gan, tmp_path / "set", counts, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_a_failure_midway_leaves_nothing(tmp_path, gan, monkeypatch):
    calls = []
    original = ConditionalDCGAN.sample

    def fail_on_second_batch(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk gone")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ConditionalDCGAN, "sample", fail_on_second_batch)
    with pytest.raises(OSError, match="disk gone"):
        export_samples(gan, tmp_path / "set", {1: 4}, batch_size=2)
    assert list(tmp_path.iterdir()) == []


def test_an_empty_request_writes_an_empty_npz(tmp_path, tiny_gan):
    result = export_samples(tiny_gan, tmp_path / "set", {}, format="npz")
    assert result["total"] == 0
    with np.load(tmp_path / "set" / "samples.npz") as npz:
        assert npz["X"].shape == (0, 8, 8) and npz["y"].shape == (0,)
