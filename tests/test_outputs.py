"""Outputs never destroy what the user made: overlap, --force, links, full disks, killed runs,
file modes; and the API and CLI edges of issue 14 (huge requests, bad seeds, huge networks)."""

import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from ganaug._io import (MANIFEST_HEADER, PARTIAL_SENTINEL, check_output_dir, clean_stale_partials, ganaug_marker,
                        refuse_overlap)

from test_cli import TINY, assert_one_line_error, manifest_rows, run, shapes, shapes_run  # noqa: F401 (fixtures)


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- an output is never an input


def test_generate_into_the_checkpoint_is_refused_and_the_model_survives(tmp_path, shapes_run):
    run_dir = tmp_path / "run"
    shutil.copytree(shapes_run, run_dir)
    before = _tree(run_dir)
    for out in (run_dir / "checkpoint", run_dir / "images", run_dir, tmp_path):
        result = run("generate", run_dir, "--out", out, "--per-class", 1, "--force", ok=False)
        assert_one_line_error(result, "overlap")
    assert _tree(run_dir) == before


def test_train_and_evaluate_outputs_must_not_overlap_their_inputs(tmp_path, shapes, shapes_run):
    assert_one_line_error(run("train", shapes, "--out", shapes / "run", *TINY, ok=False), "DATA", "overlap")
    assert not (shapes / "run").exists()
    result = run("evaluate", shapes_run, "--data", shapes, "--out", shapes_run / "report", ok=False)
    assert_one_line_error(result, "overlap")
    assert not (shapes_run / "report").exists()


def test_overlap_is_seen_through_links(tmp_path):
    real = tmp_path / "real"
    (real / "sub").mkdir(parents=True)
    (tmp_path / "alias").symlink_to(real)
    with pytest.raises(ValueError, match="overlap"):
        refuse_overlap(tmp_path / "alias" / "sub", {"DATA": real})
    refuse_overlap(tmp_path / "elsewhere", {"DATA": real, "model": None})  # disjoint: fine


# --------------------------------------------------------------------------- --force only on ganaug's own folders


@pytest.mark.parametrize("command", ["train", "generate", "demo"])
def test_force_refuses_a_folder_ganaug_did_not_write(tmp_path, shapes, shapes_run, command):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    args = {
        "train": ("train", shapes, "--out", out, *TINY),
        "generate": ("generate", shapes_run, "--out", out, "--per-class", 1),
        "demo": ("demo", "--out", tmp_path, "--epochs", 1),
    }[command]
    if command == "demo":  # the demo writes OUT/run and OUT/augmented: a folder of the user's there
        out = out.rename(tmp_path / "augmented")
    result = run(*args, "--force", ok=False)
    assert_one_line_error(result, "not written by ganaug", str(out))
    assert (out / "thesis.tex").read_text() == "years of work"


def test_a_look_alike_marker_is_not_ganaugs(tmp_path):
    for name, text in [("manifest.csv", "id,label\n1,cat\n"), ("run.json", '{"epochs": 3}'),
                       ("ganaug.json", '{"format": "other"}'), ("report.json", "[1, 2]")]:
        folder = tmp_path / name
        folder.mkdir()
        (folder / name).write_text(text)
        assert ganaug_marker(folder) is None
        with pytest.raises(FileExistsError, match="not written by ganaug"):
            check_output_dir(folder, force=True)
    marked = tmp_path / "marked"
    marked.mkdir()
    (marked / "manifest.csv").write_text("file,class,seed,model_sha256\n")
    assert ganaug_marker(marked) == "manifest.csv"
    genuine = tmp_path / "genuine-manifest.csv"
    (marked / "manifest.csv").rename(genuine)
    (marked / "manifest.csv").symlink_to(genuine)
    assert ganaug_marker(marked) is None  # a link to a real marker is not a marker


def test_force_replaces_only_its_own_kind_of_output(tmp_path, shapes_run):
    run_dir = tmp_path / "model"
    shutil.copytree(shapes_run, run_dir)
    result = run("generate", shapes_run, "--out", run_dir, "--per-class", 1, "--force", ok=False)
    assert_one_line_error(result, "manifest.csv")  # a trained run is not a generated set
    assert (run_dir / "checkpoint" / "ganaug.json").is_file()


def test_train_force_keeps_the_old_run_when_the_new_one_fails(tmp_path, shapes):
    out = tmp_path / "run"
    run("train", shapes, "--out", out, *TINY)
    before = _tree(out)
    np.savez(tmp_path / "ints.npz", X=np.full((20, 12, 12), 300, np.int32), y=np.arange(20) % 2)
    result = run("train", tmp_path / "ints.npz", "--out", out, *TINY, "--force", ok=False)
    assert_one_line_error(result, "value_range")
    assert _tree(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["ints.npz", "run"]
    result = run("train", "digits", "--out", out, "--width", "1000000", "--force", "--quiet", ok=False)
    assert_one_line_error(result, "parameters")
    assert _tree(out) == before


def test_resume_refuses_a_run_json_ganaug_did_not_write(tmp_path, shapes):
    out = tmp_path / "other-tool"
    out.mkdir()
    (out / "run.json").write_text('{"epochs": 3}')
    (out / "log.jsonl").write_text('{"epoch": 9}\n')
    assert_one_line_error(run("train", shapes, "--resume", "--out", out, *TINY, ok=False), "no run.json of ganaug")
    assert (out / "log.jsonl").read_text() == '{"epoch": 9}\n'


def test_npz_output_stores_object_labels_without_pickles(tmp_path):
    from ganaug import ConditionalDCGAN, load_digits

    X, y = load_digits()
    labels = np.array(["even" if v % 2 == 0 else "odd" for v in y[:200]], dtype=object)
    gan = ConditionalDCGAN(width=8, latent_dim=16, max_epochs=1, verbose=False, device="cpu", random_state=0)
    gan.fit(X[:200], labels).save(tmp_path / "model")
    run("generate", tmp_path / "model", "--out", tmp_path / "gen", "--per-class", 2, "--format", "npz", "--quiet")
    with np.load(tmp_path / "gen" / "samples.npz", allow_pickle=False) as f:
        assert f["y"].tolist() == ["even", "even", "odd", "odd"] and f["X"].shape == (4, 8, 8)


def test_force_does_not_follow_links(tmp_path, shapes, shapes_run):
    # --out is a link to a folder that ganaug wrote: refused, the folder stays.
    target = tmp_path / "generated"
    run("generate", shapes_run, "--out", target, "--per-class", 1, "--quiet")
    link = tmp_path / "link"
    link.symlink_to(target)
    before = _tree(target)
    assert_one_line_error(run("generate", shapes_run, "--out", link, "--per-class", 2, "--force", ok=False),
                          "symbolic link")
    assert _tree(target) == before and link.is_symlink()
    # A link inside a replaced run goes as a link; what it points to stays.
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "data.txt").write_text("mine")
    out = tmp_path / "run"
    run("train", shapes, "--out", out, *TINY)
    (out / "mine").symlink_to(keep)
    run("train", shapes, "--out", out, *TINY, "--force")
    assert (keep / "data.txt").read_text() == "mine" and not (out / "mine").exists()


def test_train_does_not_write_through_a_link_in_the_run(tmp_path, shapes):
    out = tmp_path / "run"
    run("train", shapes, "--out", out, *TINY)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(out / "checkpoint")
    (out / "checkpoint").symlink_to(elsewhere)
    assert_one_line_error(run("train", "--resume", "--out", out, "--epochs", "2", ok=False), "symbolic link")
    assert not any(elsewhere.iterdir())


# --------------------------------------------------------------------------- killed runs and file modes


def test_a_killed_generate_leaves_nothing_the_next_run_does_not_clean(tmp_path, shapes_run):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid is now free: the leftovers look like a killed run's
    out = tmp_path / "gen"
    partial = tmp_path / f"gen.partial-{dead.pid}"  # a killed generate: ganaug's sentinel inside
    (partial / "0").mkdir(parents=True)
    (partial / "0" / "000.png").write_bytes(b"half")
    (partial / PARTIAL_SENTINEL).write_text(f"{dead.pid}\n")
    old = tmp_path / f"gen.old-{dead.pid}"  # killed while replacing a generated set
    old.mkdir()
    (old / "manifest.csv").write_text(MANIFEST_HEADER + "\n")
    # Folders of the user's that only look alike: no sentinel, no marker, not a pid.
    users = [tmp_path / "gen.old-2023", tmp_path / f"gen.partial-{dead.pid + 1}0",
             tmp_path / f"gen.partial-{os.getpid()}-not-a-pid", tmp_path / "gen.old-99999999999999999999"]
    for folder in users:
        folder.mkdir()
        (folder / "results.txt").write_text("mine")
    run("generate", shapes_run, "--out", out, "--per-class", 1, "--quiet")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["gen"] + [f.name for f in users])
    assert len(manifest_rows(out)) == 3


def test_a_killed_save_leaves_temporary_files_the_next_save_removes(tmp_path, tiny_gan):
    ckpt = tiny_gan.save(tmp_path / "ckpt")
    leftovers = [ckpt / ".ganaug.json.k1ll3d.tmp", ckpt / ".weights-0123456789abcdef.safetensors.x.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a file")
    tiny_gan.save(ckpt, overwrite=True)
    assert not any(path.exists() for path in leftovers)
    assert sorted(p.name for p in ckpt.iterdir())[0] == "ganaug.json"


def test_clean_stale_partials_keeps_live_processes_work(tmp_path):
    live = tmp_path / f"out.partial-{os.getppid()}"
    live.mkdir()
    assert clean_stale_partials(tmp_path / "out") == [] and live.is_dir()


@contextlib.contextmanager
def _umask(mask):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o077], ids=["umask-022", "umask-077"])
def test_written_files_honour_the_umask(tmp_path, shapes, mask):
    out = tmp_path / "run"
    with _umask(mask):
        run("train", shapes, "--out", out, *TINY)
        run("generate", out, "--out", tmp_path / "gen", "--per-class", 1, "--quiet")
    files = [out / "run.json", out / "samples.png", out / "losses.png", out / "checkpoint" / "ganaug.json",
             *(out / "checkpoint").glob("weights-*.safetensors"), tmp_path / "gen" / "manifest.csv"]
    assert len(files) == 6
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask, path


# --------------------------------------------------------------------------- a full or read-only disk


def _can_mount() -> str | None:
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        return "needs root on Linux to mount a tiny tmpfs"
    probe = Path(f"/tmp/ganaug-mount-probe-{uuid.uuid4().hex}")
    probe.mkdir()
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", str(probe)], check=True)
        return None if ok else "this machine does not allow mounting a tmpfs"
    finally:
        probe.rmdir()


@pytest.fixture
def tiny_fs(tmp_path):
    """A folder on a small tmpfs: ``tiny_fs(size="300k", read_only=False)`` -> its path."""
    reason = _can_mount()
    if reason:
        pytest.skip(reason)
    mounts = []

    def make(size="300k", read_only=False):
        where = tmp_path / f"fs{len(mounts)}"
        where.mkdir()
        opts = f"size={size}" + (",ro" if read_only else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], check=True)
        mounts.append(where)
        return where

    yield make
    for where in mounts:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.parametrize("fmt", ["imagefolder", "npz"])
def test_generate_on_a_full_disk_is_one_line_and_leaves_nothing(tiny_fs, shapes_run, fmt):
    fs = tiny_fs("300k")
    out = fs / "gen"
    result = run("generate", shapes_run, "--out", out, "--per-class", 3000, "--format", fmt, ok=False)
    assert_one_line_error(result, "No space left on device", str(out))
    assert list(fs.iterdir()) == []  # no half-written set, no partial folder


def test_generate_on_a_read_only_disk_is_one_line(tiny_fs, shapes_run):
    fs = tiny_fs(read_only=True)
    result = run("generate", shapes_run, "--out", fs / "gen", "--per-class", 1, ok=False)
    assert_one_line_error(result, "Read-only file system", str(fs / "gen"))


def test_train_on_a_full_disk_is_one_line(tiny_fs, shapes):
    fs = tiny_fs("64k")
    out = fs / "run"
    result = run("train", shapes, "--out", out, *TINY, ok=False)
    assert_one_line_error(result, "No space left on device", str(out))
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".tmp")] if out.exists() else []
    assert leftovers == []


def test_disk_cache_on_a_full_disk_is_a_clear_error_and_leaves_nothing(tiny_fs, tiny_gan):
    from ganaug import SyntheticDataset

    fs = tiny_fs("64k")
    with pytest.raises(OSError, match="No space left on device while writing the synthetic-image cache"):
        SyntheticDataset(tiny_gan, 2000, storage="disk", cache_dir=fs, random_state=0)
    assert list(fs.iterdir()) == []


# --------------------------------------------------------------------------- API and CLI edges


def test_huge_sample_requests_are_refused_before_allocating(tiny_gan, bounds):
    with bounds() as b:
        with pytest.raises(ValueError, match="ganaug generate.*SyntheticDataset"):
            tiny_gan.sample(10**9)
        with pytest.raises(ValueError, match="SyntheticDataset"):
            tiny_gan.sample({0: 10**12}, filter=0.5)
    assert b.extra_mb < 50 and b.seconds < 1


def test_bad_seeds_and_batch_sizes_are_clear_errors(tiny_gan):
    np.testing.assert_array_equal(tiny_gan.sample_from_seeds([0, 1], np.array([3, 4], dtype=object)),
                                  tiny_gan.sample_from_seeds([0, 1], [3, 4]))
    with pytest.raises(ValueError, match=r"Seed 9223372036854775808 is out of range"):
        tiny_gan.sample_from_seeds([0], [2**63])
    with pytest.raises(ValueError, match="out of range"):
        tiny_gan.sample_from_seeds([0], [-1])
    with pytest.raises(TypeError, match="seeds must be integers"):
        tiny_gan.sample_from_seeds([0], [1.5])
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        tiny_gan.sample(4, batch_size=2.5)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        tiny_gan.sample_from_seeds([0], [1], batch_size=0)


def test_a_network_too_large_for_memory_is_one_line_and_leaves_no_run(tmp_path, bounds):
    out = tmp_path / "w"
    with bounds() as b:
        result = run("train", "digits", "--out", out, "--width", "1000000", "--quiet", ok=False)
    assert_one_line_error(result, "parameters", "--width")
    assert not out.exists()
    assert b.extra_mb < 200


def test_info_on_a_broken_checkpoint_is_one_line(tmp_path, shapes_run):
    run_dir = tmp_path / "run"
    shutil.copytree(shapes_run, run_dir)
    meta_path = run_dir / "checkpoint" / "ganaug.json"
    meta = json.loads(meta_path.read_text())
    for broken in ({**meta, "model": {}}, {**meta, "data": {"classes": 3}}, {**meta, "weights": 7}):
        meta_path.write_text(json.dumps(broken))
        for args in (("info", run_dir), ("info", run_dir, "--json")):
            assert_one_line_error(run(*args, ok=False), "ganaug.json")


def test_value_range_trains_from_the_shell(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 4096, size=(40, 12, 12)).astype(np.uint16)  # 12-bit images
    np.savez(tmp_path / "scans.npz", X=X, y=np.arange(40) % 2)
    out = tmp_path / "run"
    run("train", tmp_path / "scans.npz", "--out", out, *TINY, "--value-range", "0,4095")
    meta = json.loads((out / "checkpoint" / "ganaug.json").read_text())
    assert meta["data"]["spec"]["value_range"] == [0.0, 4095.0] and meta["data"]["spec"]["dtype"] == "uint16"
    bad = run("train", tmp_path / "scans.npz", "--out", tmp_path / "r2", *TINY, "--value-range", "5,1", ok=False)
    assert bad.exit_code == 2 and "LOW < HIGH" in bad.output
