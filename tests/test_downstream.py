"""benchmarks/downstream.py: a tiny configuration end to end, and the statistics it reports."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("downstream", ROOT / "benchmarks" / "downstream.py")
downstream = importlib.util.module_from_spec(spec)
sys.modules["downstream"] = downstream
spec.loader.exec_module(downstream)


def tiny_config(path: Path) -> Path:
    """The repository's config with one regime, two seeds and a few steps of everything."""
    cfg = json.loads((ROOT / "benchmarks" / "downstream.json").read_text())
    for dataset in cfg["datasets"].values():
        dataset["cnn"]["steps"] = 8
        dataset["sklearn"]["max_iter"] = 30
    cfg["profiles"] = {"tiny": {
        "seeds": 2, "regimes_only": ["half-1:10"], "datasets_only": ["digits"],
        "gan": {"steps": 12, "params": {"width": 8, "latent_dim": 16}, "fill": 1.5, "filter": 0.0},
        "gan_classic": {"steps": 1, "params": {"arch": "classic"}},
        "gan_balanced_labels": {"steps": 12, "params": {"width": 8, "latent_dim": 16, "fake_labels": "balanced"}},
        "gan_auto": {"steps": 12, "params": {"width": 8, "latent_dim": 16}, "validation_size": 0.2},
        "quality": {"n_per_class": 10, "cas_epochs": 1},
    }}
    path.write_text(json.dumps(cfg))
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("downstream")
    config, results = tiny_config(tmp / "tiny.json"), tmp / "results"
    assert downstream.main(["--config", str(config), "--profile", "tiny", "--results", str(results)]) == 0
    cfg = downstream.load_config(config, "tiny")
    return cfg, results


def raw_runs(cfg, results):
    cells = {}
    for dataset, regime, seed in downstream.plan(cfg):
        cells[seed] = json.loads(downstream.cell_path(results, cfg, dataset, regime, seed).read_text())
    return cells


def test_tiny_run_writes_every_method_and_a_table(tiny_run):
    cfg, results = tiny_run
    cells = raw_runs(cfg, results)
    assert sorted(cells) == [0, 1]
    for cell in cells.values():
        assert cell["machine"]["torch"] and cell["machine"]["device"] == "cpu" and "git_commit" in cell["machine"]
        counts = np.asarray(cell["counts"])
        # half of the 10 classes at 80 images, the other half at 80 / 10; which half is drawn by the seed
        assert sorted(counts.tolist()) == [8] * 5 + [80] * 5
        for classifier, methods in cfg["methods"].items():
            assert sorted(cell["runs"][classifier]) == sorted(methods)
            for method in methods:
                run = cell["runs"][classifier][method]
                if method == "gan-classic":  # the 28x28 preset cannot make 8x8 digits: said, not faked
                    assert "28x28" in run["skipped"]
                    continue
                m = run["metrics"]
                assert 0 <= m["balanced_accuracy"] <= 1 and 0 <= m["minority_recall"] <= 1
                if method in cfg["auto_variants"]:
                    # the auto rows' GAN with the row's own fixed cap (None: every added image synthetic)
                    cap = cfg["auto_variants"][method]["cap"]
                    assert run["n_synthetic"] == 5 * (72 if cap is None else min(72, round(cap * 8)))
                    assert run["n_train"] == 800 * (2 if classifier == "sklearn" else 1)
                elif method in downstream.AUTO_METHODS:
                    # balanced to the largest class like ROS, with the cap chosen on a validation split
                    selection = run["gan"]["selection"]
                    cap = selection["max_synthetic_per_real"]
                    assert cap in selection["candidates"] == [0.0, 0.5, 1.0, 2.0]
                    assert selection["n_train"] + selection["n_validation"] == counts.sum()
                    assert run["n_synthetic"] == 5 * min(72, round(cap * 8))
                    snapshots = cfg["auto_snapshots"].get(method, 1)
                    assert len(selection.get("snapshots", [None])) == snapshots
                    share = cfg["auto_pretrain"].get(method, 0)  # autoencoder epochs, a share of the GAN's
                    assert run["gan"]["pretrain_epochs"] == round(share * run["gan"]["epochs"])
                    assert (run["gan"]["pretrain_epochs"] > 0) == (share > 0)
                    assert run["n_train"] == 800 * (2 if method.endswith("classical") and classifier == "sklearn"
                                                    else 1)
                elif method.startswith("gan"):
                    # fill 1.5: every class up to 1.5 x 80 = 120 images, real and synthetic together;
                    # hybrid rows balance to the largest class (80), at most cap synthetic per real image
                    hybrid = cfg["hybrid_caps"].get(method)
                    per_class = 80 if hybrid is not None else 120
                    expected = 10 * per_class * (2 if method.endswith("classical") and classifier == "sklearn" else 1)
                    assert run["n_train"] == expected
                    if hybrid is not None:
                        assert run["n_synthetic"] == 5 * min(72, round(hybrid * 8))
                    assert run["gan"]["steps"] >= 12 and "class_fidelity_mean" in run["gan"]["quality"]
    assert cells[0]["counts"] != cells[1]["counts"]  # the seed draws the rare classes

    text = (results / "downstream-tiny.md").read_text()
    assert "A subset of the protocol" in text
    for classifier in cfg["methods"]:
        assert f"## digits, {classifier}" in text
        assert (results / f"downstream-tiny-digits-{classifier}.png").stat().st_size > 1000
    assert "| smote |" in text and "| Δ gan |" in text and "| Δ gan-filter |" in text
    assert "| gan-classic | n/a |" in text
    assert "chosen by the gan-auto rows" in text and "| Δ gan-auto |" in text


def test_paired_differences_come_from_the_per_seed_runs(tiny_run):
    cfg, results = tiny_run
    cells = raw_runs(cfg, results)
    summary = json.loads((results / "downstream-tiny-summary.json").read_text())["table"]
    for classifier, methods in cfg["methods"].items():
        regime = summary["digits"][classifier]["half-1:10"]
        baselines = [m for m in methods if not m.startswith("gan")]
        means = {m: np.mean([cells[s]["runs"][classifier][m]["metrics"]["balanced_accuracy"] for s in cells])
                 for m in baselines}
        best = max(means, key=means.get)
        # the fill rows where the path has them; cnn_bn has only the auto variants
        checked = [m for m in ("gan", "gan+classical", "gan-filter") if m in methods] or \
            [m for m in methods if m.startswith("gan")]
        for method in checked:
            paired = regime[method]["paired"]["balanced_accuracy"]
            assert paired["baseline"] == best
            diffs = [cells[s]["runs"][classifier][method]["metrics"]["balanced_accuracy"]
                     - cells[s]["runs"][classifier][best]["metrics"]["balanced_accuracy"] for s in (0, 1)]
            assert paired["diffs"] == pytest.approx(diffs)
            assert paired["mean"] == pytest.approx(np.mean(diffs))
            # two seeds: t(0.975, 1) = 12.706, half-width = t * sd / sqrt(2)
            assert paired["ci95"] == pytest.approx(12.7062 * np.std(diffs, ddof=1) / math.sqrt(2), rel=1e-4)


def test_a_second_start_reads_the_runs_back(tiny_run, capsys):
    cfg, results = tiny_run
    paths = [downstream.cell_path(results, cfg, d, r, s) for d, r, s in downstream.plan(cfg)]
    before = [p.stat().st_mtime_ns for p in paths]
    config = results.parent / "tiny.json"
    downstream.main(["--config", str(config), "--profile", "tiny", "--results", str(results)])
    assert "2 found" in capsys.readouterr().out
    assert [p.stat().st_mtime_ns for p in paths] == before


def test_other_settings_never_overwrite_runs(tmp_path):
    cfg = downstream.load_config(tiny_config(tmp_path / "c.json"), "tiny")
    other = json.loads(json.dumps(cfg))
    other["gan"]["steps"] += 1
    args = (tmp_path, "digits", "half-1:10", 0)
    assert downstream.cell_path(*args[:1], cfg, *args[1:]) != downstream.cell_path(*args[:1], other, *args[1:])


@pytest.mark.parametrize("kind, expected", [
    ({"kind": "balanced", "per_class": 10}, [10] * 10),
    ({"kind": "step", "ratio": 100}, [200] * 5 + [2] * 5),
])
def test_regime_counts(kind, expected):
    order = np.arange(10)
    assert downstream.regime_counts(kind, 10, 200, 2, order).tolist() == expected


def test_long_tail_is_exponential_with_the_ratio_and_follows_the_order():
    order = np.random.default_rng(0).permutation(10)
    counts = downstream.regime_counts({"kind": "exponential", "ratio": 100}, 10, 200, 1, order)
    assert counts[order[0]] == 200 and counts[order[-1]] == 2
    ordered = counts[order]
    assert (np.diff(ordered) <= 0).all()
    assert ordered[1] / ordered[0] == pytest.approx(100 ** (-1 / 9), rel=0.02)
    # the floor keeps SMOTE and stratified splits possible
    assert downstream.regime_counts({"kind": "step", "ratio": 1000}, 10, 200, 2, order).min() == 2


def test_t_interval():
    mean, hw = downstream.t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and hw == pytest.approx(4.3027 / math.sqrt(3), rel=1e-4)
    assert math.isnan(downstream.t_interval([0.5])[1])


def test_tune_cap_scores_every_cap_on_validation_splits_only(tmp_path):
    config = tiny_config(tmp_path / "tiny.json")
    cfg = json.loads(config.read_text())
    cfg["profiles"]["tiny"]["tune_cap"] = {"regimes": ["half-1:10"], "seeds": 1, "caps": [0, 1, None]}
    config.write_text(json.dumps(cfg))
    assert downstream.main(["--config", str(config), "--profile", "tiny", "--results", str(tmp_path / "r"),
                            "--tune-cap"]) == 0
    out = json.loads((tmp_path / "r" / "downstream-tuning-cap.json").read_text())
    assert [(r["dataset"], r["regime"], r["seed"]) for r in out["runs"]] == [("digits", "half-1:10", 0)]
    found = out["runs"][0]["validation_balanced_accuracy"]
    assert sorted(found) == ["0", "1", "None"] and all(0 <= v <= 1 for v in found.values())
    assert out["paired_vs_0"]["1"]["all"][0] == pytest.approx(found["1"] - found["0"])
    assert out["best"] in (0, 1, None)
    assert not list((tmp_path / "r").glob("downstream-digits-*.json"))  # no test-split run was made


def test_bad_shard_and_profile_are_clear_errors():
    with pytest.raises(SystemExit, match="K/N"):
        downstream.main(["--shard", "3/2", "--report-only"])
    with pytest.raises(SystemExit, match="profile 'nope' is not in"):
        downstream.main(["--profile", "nope"])


def test_any_dataset_file_runs_through_the_same_protocol(tmp_path):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    np.savez(tmp_path / "letters.npz", X=(X.reshape(-1, 8, 8) * 15).astype(np.uint8),
             y=np.asarray(list("abcdefghij"))[y])
    cfg = json.loads(tiny_config(tmp_path / "c.json").read_text())
    cfg["cnn"]["steps"] = 8
    cfg["methods"] = {"cnn": ["none", "gan"], "sklearn": ["ros", "gan"]}
    cfg["profiles"]["tiny"]["datasets_only"] = ["digits"]  # replaced by --data
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    results = tmp_path / "results"
    downstream.main(["--config", str(tmp_path / "c.json"), "--profile", "tiny", "--results", str(results),
                     "--data", str(tmp_path / "letters.npz"), "--seeds", "1"])
    (cell,) = results.glob("downstream-letters-half-1_10-s0-*.json")
    runs = json.loads(cell.read_text())["runs"]
    assert runs["cnn"]["gan"]["metrics"]["balanced_accuracy"] > 0 and "metrics" in runs["sklearn"]["ros"]
    assert "## letters, sklearn" in (results / "downstream-tiny.md").read_text()


def test_shards_split_the_plan_and_unfillable_regimes_are_recorded_as_skipped(tmp_path):
    config = tiny_config(tmp_path / "c.json")
    results = tmp_path / "results"
    base = ["--config", str(config), "--profile", "tiny", "--results", str(results), "--seeds", "4"]
    cfg = json.loads(config.read_text())
    cfg["profiles"]["tiny"]["regimes_only"] = ["balanced-200"]  # digits' pool has ~100 images per class
    config.write_text(json.dumps(cfg))
    downstream.main(base + ["--shard", "1/2"])
    assert sorted(p.name.split("-s")[1][0] for p in results.glob("downstream-digits-*.json")) == ["1", "3"]
    downstream.main(base + ["--shard", "0/2"])
    cells = sorted(results.glob("downstream-digits-*.json"))
    assert len(cells) == 4
    for cell in cells:
        runs = json.loads(cell.read_text())["runs"]
        assert "needs 200 images of a class" in runs["cnn"]["none"]["skipped"]


def test_a_dataset_that_cannot_be_read_leaves_no_result(tmp_path, capsys):
    config = tiny_config(tmp_path / "c.json")
    results = tmp_path / "results"
    downstream.main(["--config", str(config), "--profile", "tiny", "--results", str(results),
                     "--source", f"digits={tmp_path / 'absent'}"])
    assert not list(results.glob("downstream-digits-*.json"))
    captured = capsys.readouterr()
    assert "digits: cannot run" in captured.out + captured.err
