import os
import subprocess
import sys
from pathlib import Path

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


def test_rare_classes_benchmark_runs():
    """A one-epoch, one-seed run of benchmarks/rare_classes.py, so the script cannot rot."""
    import json

    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "rare_classes.py"), "--epochs", "1", "--seeds", "1",
         "--set", "width=8"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "training images per class: [89, 91, 89, 91, 90, 20, 20, 20, 20, 20]" in out.stdout
    means = json.loads(out.stdout.split("mean over seeds:")[1])
    assert 0 <= means["rare_fidelity"] <= 1 and 0 <= means["common_fidelity"] <= 1
    assert means["steps"] == 17  # 550 images // batch 32
