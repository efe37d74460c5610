"""The command line, end to end: click's CliRunner on real files in temporary folders."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ganaug import ConditionalDCGAN, __version__
from ganaug.cli import main

TINY = ["--epochs", "1", "--width", "8", "--latent-dim", "16", "--quiet"]
COMMANDS = ["train", "generate", "evaluate", "info", "demo"]


def run(*args, ok=True):
    result = CliRunner().invoke(main, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 1, (result.output, result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def write_pngs(root, counts, size=(12, 12), mode="L", seed=0):
    """An ImageFolder-style tree root/<class>/<i>.png drawn from the 8x8 digits, upscaled."""
    from ganaug import load_digits

    X, y = load_digits()
    rng = np.random.default_rng(seed)
    for k, (name, n) in enumerate(counts.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        pool = np.flatnonzero(y == k)
        for i in range(n):
            img = Image.fromarray((X[rng.choice(pool)] * 255).astype(np.uint8)).resize(size[::-1])
            img.convert(mode).save(root / name / f"{i:03d}.png")
    return root


def write_idx(folder, X, y):
    folder.mkdir(parents=True, exist_ok=True)
    header = (0x00000803).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in X.shape)
    (folder / "train-images-idx3-ubyte").write_bytes(header + X.astype(np.uint8).tobytes())
    labels = (0x00000801).to_bytes(4, "big") + len(y).to_bytes(4, "big")
    (folder / "train-labels-idx1-ubyte").write_bytes(labels + y.astype(np.uint8).tobytes())
    return folder


def log_lines(run_dir):
    return [json.loads(line) for line in (Path(run_dir) / "log.jsonl").read_text().splitlines()]


def log_epochs(run_dir):
    """Epochs of the per-epoch lines (the --monitor-every lines carry "metrics")."""
    return [line["epoch"] for line in log_lines(run_dir) if "metrics" not in line]


def metadata(run_dir):
    return json.loads((Path(run_dir) / "checkpoint" / "ganaug.json").read_text())


def read_folder(root):
    """{relative file: pixels} of every PNG under root."""
    return {p.relative_to(root).as_posix(): np.asarray(Image.open(p)) for p in sorted(root.rglob("*.png"))}


def manifest_rows(out):
    import csv

    with open(Path(out) / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """An imbalanced image folder: 30 'a', 20 'b', 10 'c' grey 12x12 PNGs."""
    return write_pngs(tmp_path_factory.mktemp("data") / "shapes", {"a": 30, "b": 20, "c": 10})


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory, shapes):
    out = tmp_path_factory.mktemp("runs") / "shapes"
    run("train", shapes, "--out", out, *TINY, "--epochs", "2", "--grid-every", "1")
    return out


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "digits"
    run("train", "digits", "--out", out, *TINY)
    return out


# --------------------------------------------------------------------------- basics


def test_version():
    result = run("--version")
    assert result.output.strip() == f"ganaug {__version__}"


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_has_an_example(command):
    result = run(*([command] if command else []), "--help")
    assert "Example:" in result.output
    assert "Usage: " in result.output


def test_python_dash_m_runs_the_cli():
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    proc = subprocess.run([sys.executable, "-m", "ganaug", "--version"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == f"ganaug {__version__}"


# --------------------------------------------------------------------------- train, every kind of DATA


def test_train_image_folder_writes_the_run(shapes_run):
    for name in ("run.json", "checkpoint/ganaug.json", "samples.png", "losses.png", "log.jsonl",
                 "samples/epoch-0001.png", "samples/epoch-0002.png"):
        assert (shapes_run / name).is_file(), name
    assert log_epochs(shapes_run) == [1, 2]
    line = json.loads((shapes_run / "log.jsonl").read_text().splitlines()[-1])
    assert {"epoch", "step", "d_loss", "g_loss", "seconds", "images_per_s"} <= set(line)
    meta = metadata(shapes_run)
    assert meta["data"]["classes"] == ["a", "b", "c"]
    assert meta["data"]["class_counts"] == [30, 20, 10]
    assert (meta["model"]["channels"], meta["model"]["height"], meta["model"]["width"]) == (1, 12, 12)
    assert meta["training"]["epoch"] == 2
    assert Image.open(shapes_run / "losses.png").size[0] > 100


def test_train_npz(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(40, 10, 10, 3), dtype=np.uint8)
    np.savez(tmp_path / "data.npz", X=X, y=np.arange(40) % 2)
    result = run("train", tmp_path / "data.npz", "--out", tmp_path / "run", *TINY, "--json")
    summary = json.loads(result.output)
    assert summary["image_shape"] == [3, 10, 10] and summary["classes"] == ["0", "1"] and summary["epochs"] == 1
    assert log_epochs(tmp_path / "run") == [1]
    assert metadata(tmp_path / "run")["data"]["spec"]["layout"] == "NHWC"


def test_train_idx_folder(tmp_path, digits):
    X, y = digits
    write_idx(tmp_path / "idx", (X[:120] * 255).astype(np.uint8), y[:120])
    run("train", tmp_path / "idx", "--out", tmp_path / "run", *TINY)
    meta = metadata(tmp_path / "run")
    assert meta["data"]["classes"] == list(range(10)) and meta["data"]["spec"]["dtype"] == "uint8"
    assert (tmp_path / "run" / "samples.png").is_file()


def test_train_passes_every_estimator_option(tmp_path, shapes):
    run("train", shapes, "--out", tmp_path / "run", *TINY, "--lr-g", "3e-4", "--lr-d", "5e-4", "--betas", "0.5,0.99",
        "--dropout", "0.1", "--embed-dim", "4", "--minibatch-std", "--no-train-classifier", "--max-time", "100")
    meta = metadata(tmp_path / "run")
    assert {k: meta["params"][k] for k in ("lr_g", "lr_d", "betas", "dropout", "embed_dim", "minibatch_std",
                                          "train_classifier", "max_time")} == {
        "lr_g": 3e-4, "lr_d": 5e-4, "betas": [0.5, 0.99], "dropout": 0.1, "embed_dim": 4, "minibatch_std": True,
        "train_classifier": False, "max_time": 100.0}
    assert meta["classifier"] is None and meta["training"]["betas"] == [0.5, 0.99]
    result = run("train", "--resume", "--out", tmp_path / "run", "--epochs", "2", "--lr-g", "1e-3", ok=False)
    assert_one_line_error(result, "Cannot resume with --lr-g 0.001")
    result = run("train", shapes, "--out", tmp_path / "other", *TINY, "--betas", "0.5", ok=False)
    assert result.exit_code == 2 and "is not two numbers" in result.output


def test_train_options_turn_off_the_stabilisers(tmp_path, shapes):
    run("train", shapes, "--out", tmp_path / "run", *TINY, "--augment", "none", "--no-spectral-norm", "--loss", "bce",
        "--ema", "none")
    params = metadata(tmp_path / "run")["params"]
    assert (params["augment"], params["spectral_norm"], params["loss"], params["ema"]) == (None, False, "bce", None)


@pytest.mark.parametrize("value", ["1", "0", "-0.5", "fast"])
def test_train_refuses_a_bad_ema(tmp_path, shapes, value):
    result = run("train", shapes, "--out", tmp_path / "run", *TINY, "--ema", value, ok=False)
    assert result.exit_code == 2 and "is not a decay in (0, 1)" in result.output, result.output
    assert not (tmp_path / "run").exists()


def test_train_digits(digits_run):
    assert (digits_run / "checkpoint" / "ganaug.json").is_file()
    assert log_epochs(digits_run) == [1]
    assert json.loads((digits_run / "run.json").read_text())["data"] == "digits"


@pytest.mark.slow  # ~50 s: 10,000 28x28 images, and the domain classifier trains on all of them
def test_train_real_mnist(tmp_path, mnist_dir):
    run("train", mnist_dir, "--out", tmp_path / "run", *TINY)
    meta = metadata(tmp_path / "run")
    assert sum(meta["data"]["class_counts"]) == 10_000
    assert (meta["model"]["height"], meta["model"]["width"]) == (28, 28)


def test_train_config_file_and_command_line_precedence(tmp_path, shapes):
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"epochs": 3, "width": 8, "latent-dim": 16, "grid_every": 0}))
    run("train", shapes, "--out", tmp_path / "run", "--config", config, "--epochs", "1", "--quiet")
    assert log_epochs(tmp_path / "run") == [1]  # the command line wins
    assert metadata(tmp_path / "run")["params"]["width"] == 8  # the file fills in the rest
    assert not (tmp_path / "run" / "samples").exists()

    toml = tmp_path / "train.toml"
    toml.write_text('epochs = 1\nwidth = 8\nlatent_dim = 16\nout = "%s"\n' % (tmp_path / "run2").as_posix())
    run("train", shapes, "--config", toml, "--quiet")
    assert metadata(tmp_path / "run2")["model"]["latent_dim"] == 16

    nulls = tmp_path / "nulls.json"  # JSON null turns a setting off, as 'none' does on the command line
    nulls.write_text(json.dumps({"epochs": 1, "width": 8, "latent_dim": 16, "ema": None, "augment": None,
                                 "batch_size": None}))
    run("train", shapes, "--out", tmp_path / "run4", "--config", nulls, "--quiet")
    params = metadata(tmp_path / "run4")["params"]
    assert (params["ema"], params["augment"], params["batch_size"]) == (None, None, None)

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"epochz": 3}))
    assert_one_line_error(run("train", shapes, "--out", tmp_path / "run3", "--config", bad, ok=False), "epochz")


def test_train_image_size_and_channels(tmp_path):
    data = write_pngs(tmp_path / "data", {"x": 6, "y": 6}, size=(12, 12))
    write_pngs(tmp_path / "data", {"x": 0, "y": 3}, size=(16, 20))  # mixed sizes...
    run("train", data, "--out", tmp_path / "run", *TINY, "--image-size", "16", "--channels", "3")
    meta = metadata(tmp_path / "run")  # ...resized on load
    assert (meta["model"]["channels"], meta["model"]["height"], meta["model"]["width"]) == (3, 16, 16)


# --------------------------------------------------------------------------- --force and refusing to overwrite


def test_train_refuses_a_non_empty_run_dir_unless_force(tmp_path, shapes):
    out = tmp_path / "run"
    run("train", shapes, "--out", out, *TINY)
    (out / "note.txt").write_text("from an earlier run")
    assert_one_line_error(run("train", shapes, "--out", out, *TINY, ok=False), "--force", "--resume")
    assert (out / "note.txt").exists()
    run("train", shapes, "--out", out, *TINY, "--force")  # a ganaug run: --force replaces it
    assert not (out / "note.txt").exists() and (out / "checkpoint" / "ganaug.json").is_file()


def test_generate_refuses_a_non_empty_out_unless_force(tmp_path, shapes_run):
    out = tmp_path / "gen"
    run("generate", shapes_run, "--out", out, "--per-class", 1, "--quiet")
    assert_one_line_error(run("generate", shapes_run, "--out", out, "--per-class", 2, ok=False), "--force")
    assert len(manifest_rows(out)) == 3
    run("generate", shapes_run, "--out", out, "--per-class", 2, "--force", "--quiet")
    assert len(manifest_rows(out)) == 6
    assert not list(tmp_path.glob("gen.*"))  # no temporary or old folder left beside it


def test_demo_refuses_then_forces(tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "x").write_text("x")
    assert_one_line_error(run("demo", "--out", out, "--epochs", 1, ok=False), "--force")
    result = run("demo", "--out", out, "--epochs", 1, "--per-class", 5, "--force")
    assert "augmentation set" in result.output and str(out / "run" / "samples.png") in result.output
    assert (out / "run" / "samples.png").is_file() and (out / "run" / "losses.png").is_file()
    assert len(list((out / "augmented").rglob("*.png"))) == 50
    assert (out / "x").read_text() == "x"  # not the demo's: left alone
    run("demo", "--out", out, "--epochs", 1, "--per-class", 2, "--force", "--quiet")  # its own: replaced
    assert len(list((out / "augmented").rglob("*.png"))) == 20


# --------------------------------------------------------------------------- generate


def test_generate_per_class_loads_with_imagefolder_and_regenerates_exactly(tmp_path, shapes_run):
    from torchvision.datasets import ImageFolder

    out = tmp_path / "gen"
    result = run("generate", shapes_run, "--out", out, "--per-class", 7, "--seed", 100, "--batch-size", 4, "--json")
    summary = json.loads(result.output)
    assert summary["counts"] == {"a": 7, "b": 7, "c": 7} and summary["total"] == 21
    dataset = ImageFolder(out)
    assert dataset.classes == ["a", "b", "c"]
    assert np.bincount(dataset.targets).tolist() == [7, 7, 7]
    assert dataset[0][0].size == (12, 12)

    rows = manifest_rows(out)
    assert len(rows) == 21 and set(rows[0]) == {"file", "class", "seed", "model_sha256"}
    assert [int(r["seed"]) for r in rows] == list(range(100, 121))  # contiguous: image i has seed + i
    assert {r["model_sha256"] for r in rows} == {metadata(shapes_run)["weights"]["sha256"]}
    pixels = read_folder(out)
    assert set(pixels) == {r["file"] for r in rows}
    gan = ConditionalDCGAN.load(shapes_run / "checkpoint", device="cpu")
    again = gan.sample_from_seeds([r["class"] for r in rows], [int(r["seed"]) for r in rows])
    assert again.dtype == np.uint8
    for row, image in zip(rows, again):
        np.testing.assert_array_equal(pixels[row["file"]], image)


def test_generate_digits_float_model_writes_8bit_pngs_that_regenerate(tmp_path, digits_run):
    out = tmp_path / "gen"
    run("generate", digits_run, "--out", out, "--class", 3, "--n", 5, "--quiet")
    rows = manifest_rows(out)
    assert [r["file"] for r in rows] == [f"3/{i:06d}.png" for i in range(5)]
    gan = ConditionalDCGAN.load(digits_run / "checkpoint", device="cpu")
    again = gan.sample_from_seeds([3] * 5, [int(r["seed"]) for r in rows])  # float32 in [0, 1]
    for row, image in zip(rows, again):
        png = np.asarray(Image.open(out / row["file"]))
        assert png.shape == (8, 8) and Image.open(out / row["file"]).mode == "L"
        np.testing.assert_array_equal(png, np.rint(image * 255).astype(np.uint8))


def test_generate_balance_fills_up_to_the_largest_class(tmp_path, shapes, shapes_run):
    from torchvision.datasets import ImageFolder

    out = tmp_path / "gen"
    result = run("generate", shapes_run, "--out", out, "--balance", shapes)
    assert "Generated 30 images" in result.output
    dataset = ImageFolder(out)
    # 'a' is the majority (30): nothing to add, so no (empty) folder that ImageFolder would reject.
    assert dataset.classes == ["b", "c"]
    assert np.bincount(dataset.targets).tolist() == [10, 20]
    assert len(manifest_rows(out)) == 30


def test_generate_class_and_n_repeatable(tmp_path, shapes_run):
    out = tmp_path / "gen"
    result = run("generate", shapes_run, "--out", out, "--class", "c", "--n", 3, "--class", "a", "--n", 2, "--json")
    assert json.loads(result.output)["counts"] == {"a": 2, "c": 3}  # in the model's class order
    assert sorted(p.parent.name for p in out.rglob("*.png")) == ["a", "a", "c", "c", "c"]


def test_generate_npz(tmp_path, shapes_run):
    out = tmp_path / "gen"
    run("generate", shapes_run, "--out", out, "--per-class", 5, "--format", "npz", "--batch-size", 3, "--quiet")
    assert sorted(p.name for p in out.iterdir()) == ["manifest.csv", "samples.npz"]
    with np.load(out / "samples.npz") as f:
        X, y = f["X"], f["y"]
    assert X.shape == (15, 12, 12) and X.dtype == np.uint8  # like the training data
    assert y.tolist() == ["a"] * 5 + ["b"] * 5 + ["c"] * 5
    rows = manifest_rows(out)
    assert [int(r["file"]) for r in rows] == list(range(15))
    gan = ConditionalDCGAN.load(shapes_run / "checkpoint", device="cpu")
    np.testing.assert_array_equal(gan.sample_from_seeds(y.tolist(), [int(r["seed"]) for r in rows]), X)


def test_generate_streams_in_batches(tmp_path, shapes_run, monkeypatch):
    sizes = []
    original = ConditionalDCGAN.sample

    def spy(self, n_or_counts, **kwargs):
        sizes.append(sum(n_or_counts.values()))
        return original(self, n_or_counts, **kwargs)

    monkeypatch.setattr(ConditionalDCGAN, "sample", spy)
    run("generate", shapes_run, "--out", tmp_path / "gen", "--per-class", 10, "--batch-size", 4, "--quiet")
    assert sizes == [4, 4, 2] * 3


def test_interrupted_generate_leaves_nothing(tmp_path, shapes_run, monkeypatch):
    calls = []
    original = ConditionalDCGAN.sample

    def interrupt_on_second_batch(self, n_or_counts, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, n_or_counts, **kwargs)

    monkeypatch.setattr(ConditionalDCGAN, "sample", interrupt_on_second_batch)
    result = run("generate", shapes_run, "--out", tmp_path / "gen", "--per-class", 10, "--batch-size", 4, ok=False)
    assert result.exit_code == 130 and "nothing was written" in result.output
    assert list(tmp_path.iterdir()) == []  # neither gen/ nor a gen.partial-* folder


def test_generate_needs_exactly_one_way_to_count(tmp_path, shapes_run, shapes):
    for args in ([], ["--per-class", 2, "--balance", shapes], ["--per-class", 2, "--class", "a", "--n", 1],
                 ["--class", "a"], ["--class", "a", "--n", 1, "--n", 2]):
        result = run("generate", shapes_run, "--out", tmp_path / "gen", *args, ok=False)
        assert result.exit_code == 2, (args, result.output)
    assert not (tmp_path / "gen").exists()


# --------------------------------------------------------------------------- info and evaluate


def test_info_text_and_json(shapes_run):
    text = run("info", shapes_run).output
    for fragment in ("classes        3: a, b, c", "a: 30, b: 20, c: 10", "(1, 12, 12)", "uint8 in [0, 255]",
                     "2/2 epochs", f"ganaug {__version__}", "torch "):
        assert fragment in text, fragment
    meta = json.loads(run("info", shapes_run, "--json").output)
    assert meta["data"]["classes"] == ["a", "b", "c"] and meta["training"]["epoch"] == 2
    assert json.loads(run("info", shapes_run / "checkpoint", "--json").output) == meta  # the checkpoint itself works
    assert run("info", shapes_run, "--quiet").output == ""


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_quiet_and_json(command):
    text = run(command, "--help").output
    assert "--quiet" in text and "--json" in text


def test_train_options_are_the_run_settings():
    """One option per setting of ganaug.run, each with the run's default."""
    from ganaug.cli.train import TRAIN_OPTIONS, command
    from ganaug.run import TRAIN_DEFAULTS

    assert sorted(o.name for o in TRAIN_OPTIONS) == sorted(k for k in TRAIN_DEFAULTS if k != "data")
    given = command.make_context("train", ["--out", "run"]).params  # what click hands the command
    assert {k: given[k] for k in TRAIN_DEFAULTS} == TRAIN_DEFAULTS


def test_info_does_not_load_the_model(shapes_run, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("info must not load the weights")

    monkeypatch.setattr(ConditionalDCGAN, "load", boom)
    run("info", shapes_run)


def test_evaluate_text_json_and_out(tmp_path, shapes, shapes_run):
    text = run("evaluate", shapes_run, "--data", shapes, "--n-per-class", 10).output
    assert "class fidelity" in text and "Fréchet distance" in text
    report = json.loads(run("evaluate", shapes_run, "--data", shapes, "--json", "--n-per-class", 10).output)
    assert set(report["class_fidelity"]) == {"a", "b", "c"}
    assert 0 <= report["class_fidelity_mean"] <= 1
    run("evaluate", shapes_run, "--data", shapes, "--n-per-class", 10, "--out", tmp_path / "report", "--quiet")
    assert json.loads((tmp_path / "report" / "report.json").read_text())["class_fidelity"] == report["class_fidelity"]


# --------------------------------------------------------------------------- errors: one line, exit 1


@pytest.fixture
def bad_data(tmp_path):
    """DATA paths that must each fail with one clear line."""
    empty = tmp_path / "empty"
    empty.mkdir()
    no_images = tmp_path / "no_images"
    (no_images / "a").mkdir(parents=True)
    (no_images / "a" / "notes.txt").write_text("not an image")
    unreadable = write_pngs(tmp_path / "unreadable", {"a": 3, "b": 3})
    (unreadable / "a" / "broken.png").write_bytes(b"this is not a PNG")
    mixed = write_pngs(tmp_path / "mixed", {"a": 3, "b": 3})
    write_pngs(mixed, {"a": 0, "b": 1}, size=(16, 16), seed=1)  # b/000.png becomes 16x16
    return {
        "missing": (tmp_path / "nope", "not found"),
        "empty folder": (empty, "Couldn't find any class folder"),
        "no images": (no_images, "Found no image files"),
        "unreadable image": (unreadable, "broken.png"),
        "mixed sizes": (mixed, "--image-size"),
    }


@pytest.mark.parametrize("case", ["missing", "empty folder", "no images", "unreadable image", "mixed sizes"])
def test_bad_data_is_one_line(tmp_path, bad_data, case):
    data, fragment = bad_data[case]
    result = run("train", data, "--out", tmp_path / "run", *TINY, ok=False)
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "run").exists()  # nothing half-made
    debug = CliRunner().invoke(main, ["--debug", "train", str(data), "--out", str(tmp_path / "run"), *TINY])
    assert isinstance(debug.exception, (ValueError, FileNotFoundError)) and debug.exit_code == 1


def test_missing_data_argument_is_a_usage_error(tmp_path):
    result = run("train", "--out", tmp_path / "run", ok=False)
    assert result.exit_code == 2 and "DATA" in result.output


def test_unknown_class(tmp_path, shapes_run):
    result = run("generate", shapes_run, "--out", tmp_path / "gen", "--class", "zebra", "--n", 2, ok=False)
    assert_one_line_error(result, "'zebra'", "a, b, c")
    assert not (tmp_path / "gen").exists()


def test_balance_with_a_class_the_model_does_not_know(tmp_path, shapes_run):
    other = write_pngs(tmp_path / "other", {"a": 3, "zebra": 2})
    result = run("generate", shapes_run, "--out", tmp_path / "gen", "--balance", other, ok=False)
    assert_one_line_error(result, "zebra")


@pytest.mark.parametrize("command", ["generate", "info", "evaluate"])
def test_missing_checkpoint(tmp_path, shapes, command):
    extra = {"generate": ["--out", tmp_path / "gen", "--per-class", 1], "info": [],
             "evaluate": ["--data", shapes]}[command]
    result = run(command, tmp_path / "no-run", *extra, ok=False)
    assert_one_line_error(result, "No checkpoint")
    debug = CliRunner().invoke(main, ["--debug", command, str(tmp_path / "no-run"), *map(str, extra)])
    assert isinstance(debug.exception, FileNotFoundError)


@pytest.mark.parametrize("damage", ["garbage json", "garbage weights"])
@pytest.mark.parametrize("command", ["generate", "info"])
def test_corrupt_checkpoint(tmp_path, shapes_run, damage, command):
    import shutil

    from ganaug import CheckpointError

    broken = tmp_path / "run"
    shutil.copytree(shapes_run, broken)
    if damage == "garbage json":
        (broken / "checkpoint" / "ganaug.json").write_text("{ this is not json")
    else:
        weights = next((broken / "checkpoint").glob("weights-*.safetensors"))
        weights.write_bytes(b"\0" * 100)
    args = [command, broken] + (["--out", tmp_path / "gen", "--per-class", 1] if command == "generate" else [])
    result = run(*args, ok=False)
    if command == "info" and damage == "garbage weights":
        assert result.exit_code == 0  # info reads only ganaug.json
        return
    assert_one_line_error(result, "corrupt")
    debug = CliRunner().invoke(main, ["--debug", *map(str, args)])
    assert isinstance(debug.exception, CheckpointError)


@pytest.mark.parametrize("command", ["train", "generate"])
def test_device_not_available(tmp_path, shapes_run, command):
    if command == "train":
        args = ["train", "digits", "--out", tmp_path / "run", *TINY, "--device", "cuda:7"]
    else:
        args = ["generate", shapes_run, "--out", tmp_path / "gen", "--per-class", 1, "--device", "cuda:7"]
    assert_one_line_error(run(*args, ok=False), "'cuda:7' is not available", "--device cpu")
    assert not (tmp_path / "run").exists() and not (tmp_path / "gen").exists()


def test_unknown_device_is_named_in_command_line_words(tmp_path, shapes_run):
    result = run("generate", shapes_run, "--out", tmp_path / "gen", "--per-class", 1, "--device", "toaster", ok=False)
    assert_one_line_error(result, "Unknown device 'toaster'", "use --device auto, cpu, cuda, cuda:N or mps")
    assert not (tmp_path / "gen").exists()


# --------------------------------------------------------------------------- interrupt and resume


def start_training(run_dir, epochs=40):
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
    cmd = [sys.executable, "-m", "ganaug", "train", "digits", "--out", str(run_dir), "--epochs", str(epochs),
           "--width", "8", "--latent-dim", "16", "--monitor-every", "50", "--quiet"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_for_epochs(proc, run_dir, n=2, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = run_dir / "log.jsonl"
        if (run_dir / "checkpoint" / "ganaug.json").is_file() and log.is_file():
            if sum('"metrics"' not in line for line in log.read_text().splitlines()) >= n:
                return
        if proc.poll() is not None:
            pytest.fail(f"training ended early: {proc.communicate()}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail("training did not reach 2 epochs in time")


def test_resume_after_kill_continues_bit_identically(tmp_path):
    epochs = 16  # enough to kill it mid-run (after epoch 2); each epoch is ~0.5 s here
    killed = tmp_path / "killed"
    proc = start_training(killed, epochs=epochs)
    wait_for_epochs(proc, killed)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    at_kill = metadata(killed)["training"]["epoch"]
    assert 1 <= at_kill < epochs  # the log line of an epoch is written just before its checkpoint

    result = run("train", "--resume", "--out", killed, "--json")
    summary = json.loads(result.output)
    assert summary["epochs"] == epochs and summary["resumed_from_epoch"] == at_kill
    assert metadata(killed)["training"]["epoch"] == epochs
    # The log holds each epoch once: lines past the checkpoint were rewritten by the resumed run.
    assert log_epochs(killed) == list(range(1, epochs + 1))

    straight = tmp_path / "straight"
    run("train", "digits", "--out", straight, "--epochs", epochs, "--width", 8, "--latent-dim", 16,
        "--monitor-every", 50, "--quiet")

    def losses_and_metrics(run_dir):
        return [(r["d_loss"], r["g_loss"]) if "metrics" not in r else (r["step"], r["metrics"]) for r in log_lines(run_dir)]

    assert losses_and_metrics(killed) == losses_and_metrics(straight)
    monitored = [r for r in log_lines(straight) if "metrics" in r]
    # 1,797 digits at the default batch of 32: 56 steps per epoch.
    assert [r["step"] for r in monitored] == list(range(50, epochs * 56 + 1, 50))
    assert all(0 <= r["metrics"]["class_fidelity"] <= 1 and r["metrics"]["fid"] > 0 for r in monitored)
    assert metadata(killed)["weights"]["sha256"] == metadata(straight)["weights"]["sha256"]


def test_ctrl_c_saves_and_says_how_to_resume(tmp_path):
    out = tmp_path / "run"
    proc = start_training(out, epochs=200)
    wait_for_epochs(proc, out)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert f"resume with: ganaug train --resume --out {out}" in stderr
    assert "Traceback" not in stderr
    saved = metadata(out)["training"]["epoch"]
    assert f"Interrupted after epoch {saved};" in stderr and saved >= 2
    assert log_epochs(out)[:saved] == list(range(1, saved + 1))


def test_a_lost_ctrl_c_still_stops_training_after_the_epoch(tmp_path):
    # Python drops a KeyboardInterrupt raised inside a finaliser; the SIGINT handler also
    # sets `interrupted`, and the epoch hook then stops training with the epoch saved.
    from ganaug import load_digits
    from ganaug.run import EpochHook

    X, y = load_digits()
    hook = EpochHook(tmp_path, n_images=len(X), checkpoint_every=1, grid_every=0, saved_epoch=0, step=0)
    hook.interrupted = True
    gan = ConditionalDCGAN(max_epochs=5, width=8, latent_dim=16, train_classifier=False, verbose=False, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        gan.fit(X, y, callback=hook)
    assert hook.completed == hook.saved_epoch == 1 and hook.in_callback
    assert ConditionalDCGAN.load(tmp_path / "checkpoint").n_epochs_ == 1


def test_resume_refuses_to_change_the_model(tmp_path, shapes, shapes_run):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(shapes_run, out)
    result = run("train", "--resume", "--out", out, "--width", "16", ok=False)
    assert_one_line_error(result, "--width 16", "trained with 8")
    nothing = run("train", "--resume", "--out", tmp_path / "nothing-here", ok=False)
    assert nothing.exit_code == 2 and "DATA" in nothing.output
    assert run("train", shapes, "--resume", "--force", "--out", out, ok=False).exit_code == 2


def test_force_never_deletes_the_data_or_the_model(tmp_path, shapes_run):
    import shutil

    project = tmp_path / "project"
    data = write_pngs(project / "data", {"a": 3, "b": 3})
    assert_one_line_error(run("train", data, "--out", project, *TINY, "--force", ok=False), "DATA", "overlap")
    shutil.copytree(shapes_run, project / "run")
    result = run("generate", project / "run", "--out", project, "--per-class", 1, "--force", ok=False)
    assert_one_line_error(result, "run directory", "overlap")
    assert (project / "run" / "checkpoint" / "ganaug.json").is_file() and (data / "a" / "000.png").is_file()
