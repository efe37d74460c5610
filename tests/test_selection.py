"""ganaug.selection: the validation split, the candidate caps and the choice among them."""

from collections import Counter

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from ganaug.selection import AUTO_CAPS, candidate_caps, default_probe, select_cap, validation_split


def test_candidate_caps():
    assert candidate_caps("auto") == AUTO_CAPS and AUTO_CAPS[0] == 0
    assert candidate_caps([2, 0.5, 2]) == (0.0, 0.5, 2.0)  # sorted, unique, random oversampling added
    assert candidate_caps((1,)) == (0.0, 1.0)
    assert candidate_caps(None) is None and candidate_caps(1.5) is None
    for bad in ("best", [], [-1], [True], [float("inf")], ["1"]):
        with pytest.raises(ValueError, match="max_synthetic_per_real"):
            candidate_caps(bad)


def test_validation_split_is_stratified_seeded_and_keeps_every_class_in_training():
    y = np.array(["a"] * 50 + ["b"] * 10 + ["c"] * 2 + ["d"])
    train, val = validation_split(y, 0.2, 3)
    assert sorted(np.r_[train, val].tolist()) == list(range(len(y)))  # a partition
    assert Counter(y[val].tolist()) == {"a": 10, "b": 2, "c": 1}  # at least one; "d" has a single row
    assert set(y[train]) == {"a", "b", "c", "d"}
    again = validation_split(y, 0.2, 3)
    assert all((u == v).all() for u, v in zip((train, val), again))
    assert not (validation_split(y, 0.2, 4)[1] == val).all()


def _minority(n: int, rng: np.random.Generator, low: float = 0.45) -> np.ndarray:
    """Class 1 spreads over [low, 1] on the first feature; class 0 sits near 0.2."""
    return np.c_[rng.uniform(low, 1.0, n), rng.uniform(0, 1, n)]


def _choose(make_synthetic):
    """A split where the 10 minority training rows sit at the far end of their class and the
    validation rows near the boundary: copies of them teach a boundary too close to class 1."""
    rng = np.random.default_rng(0)
    X0 = np.c_[rng.normal(0.2, 0.05, 40), rng.uniform(0, 1, 40)]
    X1_train = np.c_[rng.uniform(0.9, 1.0, 10), rng.uniform(0, 1, 10)]
    X1_val = np.c_[[0.46, 0.48, 0.5, 0.52], rng.uniform(0, 1, 4)]
    X = np.vstack([X0, X1_train, X1_val])
    y = np.r_[np.zeros(40, int), np.ones(14, int)]
    split = (np.r_[0:30, 40:50], np.r_[30:40, 50:54])
    added = {0: 0, 1: 20}  # balance the training part, as "auto" does
    return select_cap(X, y, split, added, AUTO_CAPS, make_synthetic, LogisticRegression(C=100.0), random_state=0)


def test_synthetic_rows_that_help_are_chosen():
    rng = np.random.default_rng(1)
    record = _choose(lambda wanted: (_minority(wanted[1], rng), np.ones(wanted[1], int)))  # the class's own spread
    assert record["candidates"] == list(AUTO_CAPS) and len(record["scores"]) == len(AUTO_CAPS)
    assert record["max_synthetic_per_real"] > 0 and not record["fallback"]
    assert max(record["scores"]) > record["scores"][0]
    assert record["n_train"] == 40 and record["n_validation"] == 14 and record["seconds"] >= 0


def test_synthetic_rows_that_hurt_fall_back_to_random_oversampling():
    rng = np.random.default_rng(2)
    X = np.r_[rng.normal(0.2, 0.05, 40), rng.normal(0.8, 0.05, 14)][:, None]
    y = np.r_[np.zeros(40, int), np.ones(14, int)]
    split = (np.r_[0:30, 40:50], np.r_[30:40, 50:54])

    def wrong_class(wanted):  # rows of class 0, labelled as the requested class 1
        return rng.normal(0.2, 0.05, wanted[1])[:, None], np.ones(wanted[1], int)

    probe = KNeighborsClassifier(n_neighbors=1)  # a wrong synthetic neighbour costs a validation row
    record = select_cap(X, y, split, {0: 0, 1: 20}, AUTO_CAPS, wrong_class, probe, 0)
    assert record["scores"][0] == 1.0 > record["scores"][-1]
    assert record["max_synthetic_per_real"] == 0 and record["fallback"]


def test_ties_go_to_random_oversampling():
    from sklearn.dummy import DummyClassifier

    rng = np.random.default_rng(0)
    X, y = rng.uniform(0, 1, (50, 2)), np.r_[np.zeros(40, int), np.ones(10, int)]
    record = select_cap(X, y, validation_split(y, 0.2, 0), {0: 0, 1: 24}, AUTO_CAPS,
                        lambda wanted: (_minority(wanted[1], rng), np.ones(wanted[1], int)), DummyClassifier(),
                        random_state=0)
    assert len(set(record["scores"])) == 1 and record["max_synthetic_per_real"] == 0


def test_default_probe_scales_by_the_value_range():
    X = np.array([[0, 255], [255, 0]] * 5, dtype=np.uint8)
    probe = default_probe((0, 255)).fit(X, [0, 1] * 5)
    assert probe[0].transform(X).max() == 1.0
    assert probe.predict(X).tolist() == [0, 1] * 5
