"""ganaug.run from Python: a run directory that trains, logs, resumes and survives Ctrl-C."""

import json

import numpy as np
import pytest

from ganaug import ConditionalDCGAN
from ganaug.run import (
    LOG_FILE,
    RUN_FILE,
    TRAIN_DEFAULTS,
    TrainingInterrupted,
    read_settings,
    train_run,
    truncate_log,
)

SMALL = {"width": 8, "latent_dim": 16, "batch_size": 32, "monitor_every": 0, "grid_every": 1, "device": "cpu"}


@pytest.fixture(scope="module")
def data(tmp_path_factory, digits):
    X, y = digits
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    np.savez(path, X=X[:160], y=y[:160])
    return path


def epochs_logged(run_dir):
    return [line["epoch"] for line in map(json.loads, (run_dir / LOG_FILE).read_text().splitlines())]


def test_a_run_trains_and_resumes_from_its_directory(tmp_path, data):
    run_dir = tmp_path / "run"
    first = train_run({"data": str(data), "epochs": 1, **SMALL}, run_dir, progress=False)
    assert first["epochs"] == 1 and first["resumed_from_epoch"] == 0 and first["n_images"] == 160
    for name in ("checkpoint/ganaug.json", "samples.png", "losses.png", "samples/epoch-0001.png"):
        assert (run_dir / name).is_file(), name
    saved = read_settings(run_dir)
    assert saved["data"] == str(data.resolve()) and saved["width"] == 8 and set(TRAIN_DEFAULTS) <= set(saved)

    # The settings come back from run.json: a resume needs only the directory and the new total.
    again = train_run({"epochs": 2}, run_dir, resume=True, progress=False)
    assert again["epochs"] == 2 and again["resumed_from_epoch"] == 1 and again["steps"] == 2 * first["steps"]
    assert epochs_logged(run_dir) == [1, 2]
    assert ConditionalDCGAN.load(run_dir / "checkpoint").get_params()["width"] == 8

    with pytest.raises(ValueError, match="Cannot resume with --width 16"):
        train_run({"epochs": 3, "width": 16}, run_dir, resume=True, progress=False)
    with pytest.raises(FileExistsError, match="is not empty"):
        train_run({"data": str(data), **SMALL}, run_dir, progress=False)


def test_refuses_unknown_settings_and_missing_data(tmp_path):
    with pytest.raises(ValueError, match="Unknown settings"):
        train_run({"data": "digits", "epoch": 3}, tmp_path / "run")
    with pytest.raises(ValueError, match="No data"):
        train_run({}, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_ctrl_c_before_the_first_epoch_leaves_nothing(tmp_path, data, monkeypatch):
    def interrupted_fit(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ConditionalDCGAN, "fit", interrupted_fit)
    with pytest.raises(TrainingInterrupted, match="before the first epoch was saved") as info:
        train_run({"data": str(data), **SMALL}, tmp_path / "run", progress=False)
    assert info.value.saved_epoch == 0 and isinstance(info.value, KeyboardInterrupt)
    assert not (tmp_path / "run").exists()


def test_truncate_log_keeps_the_epochs_up_to_the_checkpoint(tmp_path):
    log = tmp_path / LOG_FILE
    lines = [{"epoch": 1}, {"epoch": 1, "step": 5, "metrics": {}}, {"epoch": 2}, {"epoch": 3}]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"epoch": 4, "d_lo')  # torn last line
    truncate_log(log, 2)
    assert [json.loads(line) for line in log.read_text().splitlines()] == lines[:3]


def test_read_settings_of_a_corrupt_run_json(tmp_path):
    assert read_settings(tmp_path) is None
    (tmp_path / RUN_FILE).write_text("{")
    with pytest.raises(ValueError, match="corrupt"):
        read_settings(tmp_path)


def test_a_folder_named_digits_does_not_replace_the_built_in_digits(tmp_path, monkeypatch):
    """'digits' names the built-in set wherever the run starts; run.json keeps the name."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "digits").mkdir()
    train_run({"data": "digits", "epochs": 1, "width": 4, "latent_dim": 8, "monitor_every": 0, "grid_every": 0,
               "train_classifier": False},
              tmp_path / "run", progress=False)
    assert read_settings(tmp_path / "run")["data"] == "digits"
