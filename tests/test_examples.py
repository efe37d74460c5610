import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO


def test_quickstart_example_runs(tmp_path):
    """The README's Python example, with a small budget, so the README cannot drift."""
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    out = subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart.py"), "--epochs", "2", "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "sampled (700, 8, 8) float32 images of classes [3, 7]" in out.stdout
    assert "on generated" in out.stdout
    assert (tmp_path / "samples.png").stat().st_size > 0
    assert (Path(tmp_path) / "checkpoint" / "ganaug.json").is_file()


def test_rare_classes_benchmark_runs(tmp_path):
    """A one-epoch, one-seed run of benchmarks/rare_classes.py, so the script cannot rot."""
    import json

    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "rare_classes.py"), "--epochs", "1", "--seeds", "1",
         "--set", "width=8", "--out", str(tmp_path / "rare.json")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "training images per class: [89, 91, 89, 91, 90, 20, 20, 20, 20, 20]" in out.stdout
    means = json.loads(out.stdout.split("mean over seeds:")[1])
    assert 0 <= means["rare_fidelity"] <= 1 and 0 <= means["common_fidelity"] <= 1
    assert means["steps"] == 17  # 550 images // batch 32
    written = json.loads((tmp_path / "rare.json").read_text())
    assert written["means"] == means and written["settings"] == ["width=8"]
    assert 0 <= means["balanced_accuracy_hybrid"] <= 1 and 0 <= written["baselines"]["random_oversampling"] <= 1


@pytest.mark.slow
def test_throughput_benchmark_runs(tmp_path, mnist_dir):
    """benchmarks/throughput.py --quick (about a minute): every row and ratio is there and positive."""
    import json

    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "throughput.py"), "--quick", "--data", str(mnist_dir),
                          "--out", str(tmp_path / "t.json")], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "t.json").read_text())
    assert [r["config"] for r in result["rows"]] == ["classic", "default"]
    for row in result["rows"]:
        assert row["plain_images_per_s"] > 0 and row["ratio_achieved_to_matmul"] > 0
        assert sorted(row["sampling_per_s"]) == ["batch_2048", "default_batch"]
        assert {"channels_last", "fused_adam"} <= set(row["plain_variants_images_per_s"])  # + bf16 where native
        assert "same_work" in row["ganaug_variants_images_per_s"]
        for rates in (row["sampling_per_s"], row["plain_variants_images_per_s"], row["ganaug_variants_images_per_s"]):
            assert all(v > 0 for v in rates.values())
    assert result["machine"]["threads"] >= 1 and result["matmul_flops"]["fp32"] > 0
