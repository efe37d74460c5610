"""Training and generation under torchrun (ganaug.distributed): gloo on the CPU, 2 processes.

The tests marked ``distributed`` start real torchrun jobs (about a minute in all on a
2-core machine); the README's test command runs them after the default suite. The
unmarked ones check the pieces in one process.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ganaug.distributed import Context, RankFailure, all_ranks_succeed, context, data_fingerprint, shard
from ganaug.trainer import _epoch_batches

WORKER = Path(__file__).with_name("distributed_worker.py")
TIMEOUT = 300
# One thread per process in every run compared here: a float32 result depends on how a
# convolution's work is split over threads (PNGs matched across thread counts, float .npz
# files did not), and torchrun sets OMP_NUM_THREADS=1 by default.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
for _name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
    ENV.pop(_name, None)


def torchrun(*args: str, nproc: int = 2, check: bool = True) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=TIMEOUT)
    if check:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def ganaug(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "ganaug", *args], env=ENV, capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def history(run_dir: Path) -> dict:
    from ganaug import ConditionalDCGAN

    return ConditionalDCGAN.load(run_dir / "checkpoint", device="cpu").history_


# The default networks: how close two runs stay depends on them (a width-8 generator, whose
# BatchNorm statistics over 32 images are noisier, differed by 0.11 in the first step).
TRAIN = ("train", "digits", "--epochs", "2", "--batch-size", "64", "--monitor-every", "0", "--grid-every", "1",
         "--quiet")


# --------------------------------------------------------------------------- one process


def test_outside_a_launch_everything_is_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    job = context()
    assert (job.rank, job.world_size, job.active, job.is_main) == (0, 1, False, True)
    with all_ranks_succeed("nothing"):
        pass


def test_shards_are_contiguous_disjoint_and_cover_everything():
    for n in (0, 1, 7, 100):
        for world in (1, 2, 3, 8):
            parts = [shard(n, Context(rank, world)) for rank in range(world)]
            assert [i for part in parts for i in part] == list(range(n))
            assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_each_rank_takes_its_share_of_the_batches_one_process_would_draw():
    images = torch.arange(60.0).reshape(60, 1, 1, 1)
    labels = torch.arange(60) % 3
    model = SimpleNamespace(latent_dim=4, n_classes=3)
    whole = list(_epoch_batches(images, labels, 12, model, seed=3, epoch=2, balanced=True))
    shares = [list(_epoch_batches(images, labels, 12, model, seed=3, epoch=2, balanced=True, job=Context(r, 3)))
              for r in range(3)]
    assert len(whole) == 5 and all(len(s) == 5 for s in shares)
    for step, batch in enumerate(whole):
        for part, name in enumerate(("images", "labels", "z", "fake labels")):
            joined = torch.cat([shares[r][step][part] for r in range(3)])
            assert torch.equal(joined, batch[part]), f"{name} of step {step}"
    seen = torch.cat([shares[1][step][0].flatten() for step in range(5)])
    assert len(seen.unique()) == 20  # rank 1's images in an epoch: 5 steps x 4, none twice


def test_data_fingerprint_sees_values_shapes_and_dtypes():
    a = torch.arange(6)
    assert data_fingerprint(a) == data_fingerprint(torch.arange(6))
    assert data_fingerprint(a) != data_fingerprint(a.reshape(2, 3))
    assert data_fingerprint(a) != data_fingerprint(a.to(torch.int32))
    assert data_fingerprint(a) != data_fingerprint(a + (a == 5))
    assert data_fingerprint(torch.tensor(3)) != data_fingerprint(torch.tensor(4))  # 0-d tensors too


def test_a_torchrun_environment_without_its_address_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ValueError, match="launch with torchrun"):
        context()


# --------------------------------------------------------------------------- torchrun jobs


@pytest.mark.distributed
def test_two_process_training_writes_once_resumes_and_matches_one_process(tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    done = torchrun("-m", "ganaug", *TRAIN, "--out", str(two), "--json")
    summary = json.loads(done.stdout)  # rank 0 alone prints: one JSON document, not two
    assert summary["processes"] == 2 and summary["epochs"] == 2
    assert sorted(p.name for p in two.iterdir()) == ["checkpoint", "log.jsonl", "losses.png", "run.json", "samples",
                                                     "samples.png"]
    assert sorted(p.name for p in (two / "samples").iterdir()) == ["epoch-0001.png", "epoch-0002.png"]
    assert not [p for p in tmp_path.iterdir() if p.name != "two"]  # no rank left partial folders behind
    log = [json.loads(line) for line in (two / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]  # one line per epoch, not one per rank
    steps = 1797 // 64
    assert summary["steps"] == 2 * steps

    resumed = json.loads(torchrun("-m", "ganaug", "train", "--resume", "--out", str(two), "--epochs", "3",
                                  "--quiet", "--json").stdout)
    assert (resumed["resumed_from_epoch"], resumed["epochs"], resumed["steps"]) == (2, 3, 3 * steps)
    assert [json.loads(line)["epoch"] for line in (two / "log.jsonl").read_text().splitlines()] == [1, 2, 3]

    # Global batch 64 over 2 processes against batch 64 in one: the same batches and noise,
    # the gradients averaged by DDP. The runs differ only in BatchNorm's statistics (each
    # process normalises its 32 images, and augments from its own stream), so the losses
    # agree closely at first and on average (`pytest -s` prints the differences).
    ganaug(*TRAIN, "--out", str(one))
    h1, h2 = history(one), history(two)
    for key in ("d_loss", "g_loss"):
        first1, first2 = np.array(h1[key][:2 * steps]), np.array(h2[key][:2 * steps])
        print(f"{key}: first 3 steps differ by at most {np.abs(first1[:3] - first2[:3]).max():.4f}, "
              f"the 2-epoch means by {abs(first1.mean() - first2.mean()):.4f}")
        assert np.abs(first1[:3] - first2[:3]).max() < 0.05, key
        assert abs(first1.mean() - first2.mean()) < 0.06, key
        assert not np.array_equal(first1, first2)  # two real runs, not one read twice


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("small") / "run"
    ganaug("train", "digits", "--out", str(run), "--epochs", "1", "--width", "8", "--latent-dim", "16",
           "--monitor-every", "0", "--grid-every", "0", "--quiet")
    return run


@pytest.mark.distributed
@pytest.mark.parametrize("fmt", ["imagefolder", "npz"])
def test_one_and_three_process_generation_write_identical_files(tmp_path, small_run, fmt):
    # 23 per class in batches of 8: 30 batches, so 3 processes take 10 each, and rank 1's
    # block starts inside class 3 (a class split between ranks, a batch shorter than the rest).
    request = ("generate", str(small_run), "--per-class", "23", "--batch-size", "8", "--format", fmt, "--quiet")
    ganaug(*request, "--out", str(tmp_path / "one"))
    torchrun("-m", "ganaug", *request, "--out", str(tmp_path / "two"), nproc=3)

    def files(root: Path) -> list[str]:
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    assert files(tmp_path / "one") == files(tmp_path / "two")
    assert len(files(tmp_path / "one")) == (231 if fmt == "imagefolder" else 2)  # 230 PNGs + manifest; npz + manifest
    for name in files(tmp_path / "one"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # no partial folder left


@pytest.mark.distributed
def test_the_python_api_under_torchrun_keeps_every_rank_the_same(tmp_path):
    torchrun(str(WORKER), str(tmp_path / "cache"), str(tmp_path))
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert sorted(r["rank"] for r in ranks) == [0, 1]
    first, second = ranks
    for key in ("weights", "seed", "steps", "d_loss", "memory", "disk", "augmented", "copies"):
        assert first[key] == second[key], key
    assert first["copies"] > 0  # the copies of real images were drawn with rank 0's seed too
    # AugmentedDataset.sampler: the job's 1000 draws, every other one to each rank; a new epoch draws anew.
    assert [len(d) for d in first["draws"] + second["draws"]] == [500] * 4
    assert first["draws"][0] != second["draws"][0] and first["draws"][0] != first["draws"][1]
    assert first["steps"] == 1797 // 64
    assert "needs GPUs" in first["sync_batchnorm_error"]
    assert "multiple of 2" in first["batch_split_error"]
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1  # written once on this node, read by both


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.distributed
def test_a_killed_rank_stops_the_other_with_a_clear_error_and_resume_continues(tmp_path):
    run = tmp_path / "run"
    # Two processes started the way torchrun starts them, so that one can be killed.
    port = _free_port()
    args = [sys.executable, "-m", "ganaug", *TRAIN[:3], "40", *TRAIN[4:], "--out", str(run)]
    procs = []
    for rank in (0, 1):
        env = {**ENV, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2", "RANK": str(rank),
               "LOCAL_RANK": str(rank)}
        procs.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        deadline = time.monotonic() + TIMEOUT
        while not ((run / "log.jsonl").is_file() and len((run / "log.jsonl").read_text().splitlines()) >= 2):
            assert time.monotonic() < deadline and procs[0].poll() is None, procs[0].communicate()
            time.sleep(0.2)
        procs[1].send_signal(signal.SIGKILL)
        _, err = procs[0].communicate(timeout=120)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert procs[0].returncode == 1
    assert "another process of this distributed job stopped or lost contact" in err
    assert "--resume" in err and "Traceback" not in err
    saved = len(history(run)["d_loss"]) // (1797 // 64)
    assert 1 <= saved < 40
    resumed = json.loads(torchrun("-m", "ganaug", "train", "--resume", "--out", str(run), "--epochs", str(saved + 1),
                                  "--quiet", "--json").stdout)
    assert (resumed["resumed_from_epoch"], resumed["epochs"]) == (saved, saved + 1)


def test_rank_failure_is_a_user_error():
    from ganaug._io import USER_ERRORS

    assert issubclass(RankFailure, USER_ERRORS)  # the command line prints it in one line
