from collections import Counter

import numpy as np
import pytest
from conftest import TINY
from imblearn.over_sampling import RandomOverSampler
from imblearn.pipeline import make_pipeline
from imblearn.utils.estimator_checks import parametrize_with_checks as imblearn_checks
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks as sklearn_checks

from ganaug import ConditionalDCGAN
from ganaug.sklearn import GANAugmentedClassifier, GANOverSampler

FAST = dict(max_epochs=1, width=4, latent_dim=8, batch_size=16, device="cpu", random_state=0)

NOT_IMAGES = (
    "the check's X has 1-20 features, not images of at least 8x8; ganaug refuses it with a clear "
    "error. The property is tested on image data in tests/test_sklearn.py."
)
IMBLEARN_FIT_CHECKS = [
    "check_samplers_fit", "check_samplers_fit_resample", "check_samplers_sampling_strategy_fit_resample",
    "check_samplers_list", "check_samplers_multiclass_ova", "check_samplers_preserve_dtype",
    "check_samplers_sample_indices", "check_samplers_2d_target", "check_sampler_get_feature_names_out",
]
SKLEARN_META_FIT_CHECKS = [
    "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_dtype_object",
    "check_pipeline_consistency", "check_estimators_nan_inf", "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_classifier_data_not_an_array",
    "check_classifiers_one_label_sample_weights", "check_classifiers_classes", "check_classifiers_train",
    "check_supervised_y_2d", "check_decision_proba_consistency", "check_methods_sample_order_invariance",
    "check_methods_subset_invariance", "check_fit2d_1feature", "check_dict_unchanged", "check_fit_idempotent",
    "check_fit_check_is_fitted", "check_n_features_in", "check_fit2d_predict1d",
]


def _expected_failures(estimator):
    if isinstance(estimator, GANOverSampler):
        return {name: NOT_IMAGES for name in IMBLEARN_FIT_CHECKS}
    if isinstance(estimator, GANAugmentedClassifier) and isinstance(estimator.oversampler, GANOverSampler):
        return {name: NOT_IMAGES for name in SKLEARN_META_FIT_CHECKS}
    return {}


@imblearn_checks([GANOverSampler(**FAST)], expected_failed_checks=_expected_failures)
def test_imblearn_estimator_checks(estimator, check):
    check(estimator)


@sklearn_checks(
    [
        GANOverSampler(**FAST),
        GANAugmentedClassifier(LogisticRegression(), GANOverSampler(**FAST)),
        # Any imblearn sampler plugs in: the meta-estimator's plumbing passes every check.
        GANAugmentedClassifier(LogisticRegression(), RandomOverSampler(random_state=0)),
    ],
    expected_failed_checks=_expected_failures,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def imbalanced_digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)  # float64 in 0..16, 64 features
    keep = np.concatenate([np.where(y == c)[0][: (12 if c in (1, 4) else 60)] for c in range(10)])
    return X[keep], y[keep]


def _sampler(**kw):
    # Every added row synthetic unless a test says otherwise: these tests are about the rows the
    # GAN makes; the default (max_synthetic_per_real="auto") has its own tests below.
    return GANOverSampler(image_shape=(8, 8), value_range=(0, 16), **{"max_synthetic_per_real": None, **FAST, **kw})


@pytest.mark.parametrize(
    "strategy",
    ["auto", "not majority", "minority", "not minority", "all", {1: 40, 4: 60}, lambda y: {4: 30}],
)
def test_counts_equal_imblearns(imbalanced_digits, strategy):
    X, y = imbalanced_digits
    _, y_ours = _sampler(sampling_strategy=strategy).fit_resample(X, y)
    _, y_ref = RandomOverSampler(sampling_strategy=strategy, random_state=0).fit_resample(X, y)
    assert Counter(y_ours.tolist()) == Counter(y_ref.tolist())


def test_float_strategy_on_binary(imbalanced_digits):
    X, y = imbalanced_digits
    mask = np.isin(y, [0, 1])
    _, y_ours = _sampler(sampling_strategy=0.5).fit_resample(X[mask], y[mask])
    _, y_ref = RandomOverSampler(sampling_strategy=0.5).fit_resample(X[mask], y[mask])
    assert Counter(y_ours.tolist()) == Counter(y_ref.tolist()) == {0: 60, 1: 30}


@pytest.mark.parametrize(
    "transform, dtype, value_range, lo, hi",
    [
        (lambda X: X, np.float64, (0, 16), 0, 16),
        (lambda X: (X / 16).astype(np.float32), np.float32, None, 0, 1),
        (lambda X: (X * 15).astype(np.uint8), np.uint8, None, 0, 255),
    ],
)
def test_originals_first_then_synthetic_in_x_dtype_and_range(imbalanced_digits, transform, dtype, value_range, lo, hi):
    X, y = imbalanced_digits
    X = transform(X)
    sampler = GANOverSampler(image_shape=(8, 8), value_range=value_range, max_synthetic_per_real=None, **FAST)
    X_res, y_res = sampler.fit_resample(X, y)
    assert X_res.dtype == dtype and y_res.dtype == y.dtype
    np.testing.assert_array_equal(X_res[: len(X)], X)
    np.testing.assert_array_equal(y_res[: len(y)], y)
    new = X_res[len(X) :]
    assert len(new) == sum(sampler.sampling_strategy_.values()) > 0
    assert new.min() >= lo and new.max() <= hi
    assert sampler.synthetic_mask_.tolist() == [False] * len(X) + [True] * len(new)
    assert sampler.n_original_samples_ == len(X) and sampler.n_features_in_ == 64
    assert isinstance(sampler.generator_, ConditionalDCGAN)
    assert not hasattr(sampler, "sample_indices_")


def test_same_random_state_same_output(imbalanced_digits):
    X, y = imbalanced_digits
    a = _sampler(random_state=4).fit_resample(X, y)[0]
    b = _sampler(random_state=4).fit_resample(X, y)[0]
    c = _sampler(random_state=5).fit_resample(X, y)[0]
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, c)


def test_square_grey_shape_is_inferred(imbalanced_digits):
    X, y = imbalanced_digits
    X_res, _ = GANOverSampler(value_range=(0, 16), **FAST).fit_resample(X, y)
    assert X_res.shape[1] == 64


def test_errors(imbalanced_digits):
    from scipy import sparse

    X, y = imbalanced_digits
    with pytest.raises(ValueError, match="20 features, which is not a square grey image; pass image_shape"):
        GANOverSampler(**FAST).fit_resample(np.random.rand(40, 20), np.arange(40) % 2)
    with pytest.raises(ValueError, match=r"image_shape \(9, 9\) holds 81 values but each row of X has 64"):
        GANOverSampler(image_shape=(9, 9), value_range=(0, 16), **FAST).fit_resample(X, y)
    with pytest.raises(ValueError, match="needs to have more than 1 class"):
        _sampler().fit_resample(X[:20], np.zeros(20, dtype=int))
    with pytest.raises(ValueError, match="outside the expected range"):
        GANOverSampler(image_shape=(8, 8), **FAST).fit_resample(X, y)  # 0..16 floats without value_range
    with pytest.raises(TypeError, match="[Ss]parse"):
        _sampler().fit_resample(sparse.csr_matrix(X), y)
    with pytest.raises(ValueError, match="max_epochs"):
        _sampler(max_epochs=0).fit_resample(X, y)
    with pytest.raises(NotFittedError):
        GANAugmentedClassifier().predict(X)


def test_pretrained_generator_object_path_and_frozen(imbalanced_digits, tmp_path):
    from sklearn.frozen import FrozenEstimator

    X, y = imbalanced_digits
    gan = ConditionalDCGAN(**{**FAST, "verbose": False}).fit(X, y, value_range=(0, 16))
    sampler = _sampler(generator=gan)
    X_res, _ = sampler.fit_resample(X, y)
    assert sampler.generator_ is gan and len(X_res) > len(X)
    gan.save(tmp_path / "g")
    from_path = _sampler(generator=str(tmp_path / "g"))
    X_path, _ = from_path.fit_resample(X, y)
    np.testing.assert_array_equal(X_path, X_res)
    with pytest.raises(ValueError, match="generator is not fitted.*FrozenEstimator"):
        clone(sampler).fit_resample(X, y)
    frozen = clone(_sampler(generator=FrozenEstimator(gan)))
    np.testing.assert_array_equal(frozen.fit_resample(X, y)[0], X_res)
    other = ConditionalDCGAN(**{**FAST, "verbose": False}).fit(X[y < 5], y[y < 5], value_range=(0, 16))
    with pytest.raises(ValueError, match="does not know classes"):
        _sampler(generator=other).fit_resample(X, y)


class _RecordingSampler(GANOverSampler):
    """Remembers the rows each GAN was fitted on (class-level: survives clone)."""

    seen: list = []

    def _fit_generator(self, X, y, data, seed):
        type(self).seen.append({row.tobytes() for row in X})
        assert len(data) == len(X)  # the rows the GAN is fitted on, already checked as images
        return super()._fit_generator(X, y, data, seed)


def test_no_leakage_in_cross_validation(imbalanced_digits):
    X, y = imbalanced_digits
    _RecordingSampler.seen = []
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    pipe = make_pipeline(
        _RecordingSampler(image_shape=(8, 8), value_range=(0, 16), **FAST), LogisticRegression(max_iter=500)
    )
    cross_validate(pipe, X, y, cv=cv, scoring="balanced_accuracy")
    folds = [{row.tobytes() for row in X[train]} for train, _ in cv.split(X, y)]
    assert len(_RecordingSampler.seen) == 3
    for seen, train in zip(_RecordingSampler.seen, folds):
        # the training fold's rows and no test rows; the default holds 20% of them out to choose
        # max_synthetic_per_real, so the GAN sees the rest
        assert seen <= train and len(seen) >= 0.75 * len(train)


def test_meta_estimator_in_pipeline_cv_and_grid_search(imbalanced_digits):
    X, y = imbalanced_digits
    clf = GANAugmentedClassifier(LogisticRegression(max_iter=500), _sampler())
    scale = FunctionTransformer(lambda Z: Z)  # a plain sklearn step before it
    pipe = Pipeline([("identity", scale), ("clf", clf)])
    scores = cross_val_score(pipe, X, y, cv=3, scoring="balanced_accuracy")
    assert scores.shape == (3,) and scores.min() > 0.5
    grid = GridSearchCV(clf, {"oversampler__max_epochs": [1, 2], "estimator__C": [0.1, 1.0]}, cv=2)
    grid.fit(X, y)
    assert set(grid.best_params_) == {"oversampler__max_epochs", "estimator__C"}
    fitted = grid.best_estimator_
    assert fitted.oversampler_.max_epochs == grid.best_params_["oversampler__max_epochs"]
    assert fitted.predict_proba(X[:3]).shape == (3, 10) and fitted.score(X, y) > 0.5
    assert clone(clf).get_params()["oversampler__max_epochs"] == 1


def test_cache_hits_and_misses(imbalanced_digits, tmp_path):
    X, y = imbalanced_digits
    first = _sampler(cache_dir=tmp_path)
    X1, _ = first.fit_resample(X, y)
    assert first.cache_hit_ is False and len(list(tmp_path.iterdir())) == 1
    second = _sampler(cache_dir=tmp_path)
    X2, _ = second.fit_resample(X, y)
    assert second.cache_hit_ is True
    np.testing.assert_array_equal(X1, X2)
    changed = _sampler(cache_dir=tmp_path, max_epochs=2)
    changed.fit_resample(X, y)
    assert changed.cache_hit_ is False
    other_rows = _sampler(cache_dir=tmp_path)
    other_rows.fit_resample(X[1:], y[1:])
    assert other_rows.cache_hit_ is False and len(list(tmp_path.iterdir())) == 3


def test_cache_saves_gan_training_in_grid_search(imbalanced_digits, tmp_path):
    X, y = imbalanced_digits
    _RecordingSampler.seen = []
    clf = GANAugmentedClassifier(
        LogisticRegression(max_iter=300),
        _RecordingSampler(image_shape=(8, 8), value_range=(0, 16), cache_dir=tmp_path, **FAST),
    )
    GridSearchCV(clf, {"estimator__C": [0.01, 0.1, 1.0]}, cv=2, refit=False).fit(X, y)
    # 3 candidates x 2 folds = 6 fits, but only one GAN per fold is trained.
    trained = [d for d in tmp_path.iterdir() if d.is_dir()]
    assert len(trained) == 2


def test_image_data_versions_of_the_checks_that_need_images(imbalanced_digits):
    """What the expected-failure checks verify, on data that is made of images."""
    import pickle

    X, y = imbalanced_digits
    X_arr, y_arr = _sampler().fit_resample(X, y)
    X_list, y_list = _sampler().fit_resample(X.tolist(), y.tolist())  # check_samplers_list
    np.testing.assert_array_equal(X_list, X_arr)
    X_2d, y_2d = _sampler().fit_resample(X, y[:, None])  # check_samplers_2d_target
    np.testing.assert_array_equal(y_2d.ravel(), y_arr)
    names = _sampler().fit(X, y).get_feature_names_out()  # check_sampler_get_feature_names_out
    assert len(names) == 64
    clf = GANAugmentedClassifier(LogisticRegression(max_iter=500), _sampler()).fit(X, y)
    again = pickle.loads(pickle.dumps(clf))  # check_estimators_pickle
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    refit = clone(clf).fit(X, y)  # check_fit_idempotent
    np.testing.assert_allclose(refit.predict_proba(X), clf.predict_proba(X))
    assert clf.n_features_in_ == 64 and clf.classes_.tolist() == list(range(10))  # check_n_features_in
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :10])


def test_filter_option(imbalanced_digits):
    X, y = imbalanced_digits
    sampler = _sampler(max_epochs=40, width=32, latent_dim=100, embed_dim=10, filter=0.2,
                       sampling_strategy={0: 70, 2: 70})
    X_res, y_res = sampler.fit_resample(X, y)
    assert sampler.generator_.classifier_ is not None
    assert Counter(y_res[len(y):].tolist()) == {0: 10, 2: 10}
    assert all(0 < r <= 1 for r in sampler.generator_.acceptance_rate_.values())


@pytest.mark.parametrize("cap", [0, 1.0])
def test_a_synthetic_cap_keeps_imblearns_counts_and_copies_real_rows(imbalanced_digits, cap):
    X, y = imbalanced_digits
    sampler = _sampler(max_synthetic_per_real=cap)
    X_res, y_res = sampler.fit_resample(X, y)
    _, y_ref = RandomOverSampler(random_state=0).fit_resample(X, y)
    assert Counter(y_res.tolist()) == Counter(y_ref.tolist())
    synthetic = Counter(y_res[sampler.synthetic_mask_].tolist())
    real = Counter(y.tolist())
    assert all(synthetic[c] <= cap * real[c] for c in real)
    assert sum(synthetic.values()) == sampler.synthetic_mask_.sum()
    n = sampler.n_original_samples_
    copies = X_res[n : n + sampler.n_copies_]
    assert sampler.n_copies_ == len(y_res) - n - sampler.synthetic_mask_.sum() > 0
    # every copy is a row of X with the same label
    for row, label in zip(copies, y_res[n : n + sampler.n_copies_]):
        assert any((X[y == label] == row).all(1))
    with pytest.raises(ValueError, match="max_synthetic_per_real"):
        _sampler(max_synthetic_per_real=-1).fit_resample(X, y)


def test_auto_cap_is_chosen_on_rows_the_gan_never_saw(imbalanced_digits):
    X, y = imbalanced_digits
    sampler = _sampler(max_synthetic_per_real="auto")
    X_res, y_res = sampler.fit_resample(X, y)
    selection = sampler.selection_
    assert selection["candidates"] == [0.0, 0.5, 1.0, 2.0] and len(selection["scores"]) == 4
    assert selection["max_synthetic_per_real"] == selection["candidates"][int(np.argmax(selection["scores"]))]
    # the GAN was trained on the training part only: 20% of each class (at least one row) held out
    assert sampler.generator_.class_counts_.sum() == selection["n_train"] == len(y) - selection["n_validation"]
    assert selection["n_validation"] == 8 * 12 + 2 * 2 and selection["gan_seconds"] > 0
    _, y_ref = RandomOverSampler(random_state=0).fit_resample(X, y)
    assert Counter(y_res.tolist()) == Counter(y_ref.tolist())
    synthetic, real = Counter(y_res[sampler.synthetic_mask_].tolist()), Counter(y.tolist())
    assert all(synthetic[c] <= selection["max_synthetic_per_real"] * real[c] for c in real)
    X_again, _ = clone(sampler).fit_resample(X, y)
    np.testing.assert_array_equal(X_again, X_res)
    fixed = _sampler(max_synthetic_per_real=0.5)
    fixed.fit_resample(X, y)
    assert fixed.selection_ is None


def test_auto_falls_back_to_random_oversampling_when_synthetic_rows_do_not_help(imbalanced_digits):
    from sklearn.dummy import DummyClassifier

    X, y = imbalanced_digits
    # a probe that ignores its input scores every cap the same: the tie goes to random oversampling
    sampler = _sampler(max_synthetic_per_real=[0.5, 3], selection_estimator=DummyClassifier())
    X_res, y_res = sampler.fit_resample(X, y)
    assert sampler.selection_["candidates"] == [0.0, 0.5, 3.0] and sampler.selection_["fallback"]
    assert sampler.synthetic_mask_.sum() == 0 and sampler.n_copies_ == len(y_res) - len(y)
    _, y_ref = RandomOverSampler(random_state=0).fit_resample(X, y)
    assert Counter(y_res.tolist()) == Counter(y_ref.tolist())


def test_the_meta_classifier_chooses_the_cap_with_its_own_estimator(imbalanced_digits):
    from sklearn.dummy import DummyClassifier

    X, y = imbalanced_digits
    sampler = _sampler(max_synthetic_per_real="auto")
    clf = GANAugmentedClassifier(DummyClassifier(), sampler).fit(X, y)
    assert isinstance(clf.oversampler_.selection_estimator, DummyClassifier)
    assert clf.oversampler_.selection_["fallback"]
    assert sampler.selection_estimator is None  # the user's sampler is not changed


@pytest.mark.parametrize("bad", [[-1], [], "best"])
def test_bad_auto_settings_are_clear_errors(imbalanced_digits, bad):
    from sklearn.utils._param_validation import InvalidParameterError

    X, y = imbalanced_digits
    with pytest.raises((ValueError, InvalidParameterError), match="max_synthetic_per_real"):
        _sampler(max_synthetic_per_real=bad).fit_resample(X, y)
    with pytest.raises(InvalidParameterError, match="validation_size"):
        _sampler(max_synthetic_per_real="auto", validation_size=1.0).fit_resample(X, y)


def test_auto_says_which_classes_the_split_leaves_with_one_image(imbalanced_digits):
    X, y = imbalanced_digits
    keep = (y != 4) | (np.cumsum(y == 4) <= 2)  # digit 4 keeps 2 rows: one is held out
    with pytest.warns(UserWarning, match=r"leaves classes \[4\] with a single image"):
        _sampler(max_synthetic_per_real="auto").fit_resample(X[keep], y[keep])


def test_latent_anchors_make_rows_near_the_real_rows_of_their_class(imbalanced_digits):
    X, y = imbalanced_digits
    kw = dict(max_epochs=8, width=16, latent_dim=32, sampling_strategy={1: 40, 4: 40})
    anchored = _sampler(latent_anchors=0.0, **kw)
    X_a, y_a = anchored.fit_resample(X, y)
    X_p, y_p = _sampler(**kw).fit_resample(X, y)
    assert y_a.tolist() == y_p.tolist() and (X_a[: len(X)] == X).all()
    assert X_a.dtype == X.dtype and X_a.min() >= 0 and X_a.max() <= 16

    def nearest(rows, labels):
        return np.mean([np.min(((X[y == c] - r) ** 2).sum(1)) for r, c in zip(rows, labels)])

    new = slice(len(X), None)
    assert nearest(X_a[new], y_a[new]) < 0.7 * nearest(X_p[new], y_p[new])
    again = _sampler(latent_anchors=0.0, **kw).fit_resample(X, y)[0]
    assert np.array_equal(X_a, again)
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="latent_anchors"):
        _sampler(latent_anchors=-1).fit_resample(X, y)


class _WeightRecorder(LogisticRegression):
    def fit(self, X, y, sample_weight=None):
        self.sample_weight_seen_ = sample_weight
        return super().fit(X, y, sample_weight=sample_weight)


def test_synthetic_weight_weighs_exactly_the_synthetic_rows(imbalanced_digits):
    X, y = imbalanced_digits
    clf = GANAugmentedClassifier(_WeightRecorder(max_iter=200), _sampler(max_synthetic_per_real=1.0),
                                 synthetic_weight=0.25).fit(X, y)
    mask = clf.oversampler_.synthetic_mask_
    seen = clf.estimator_.sample_weight_seen_
    assert mask.sum() > 0 and len(seen) == len(mask)
    assert (seen[mask] == 0.25).all() and (seen[~mask] == 1.0).all()
    plain = GANAugmentedClassifier(_WeightRecorder(max_iter=200), _sampler(max_synthetic_per_real=1.0)).fit(X, y)
    assert plain.estimator_.sample_weight_seen_ is None  # the default passes no weights at all
    assert not np.allclose(plain.estimator_.coef_, clf.estimator_.coef_)


def test_synthetic_weight_errors(imbalanced_digits):
    from sklearn.neighbors import KNeighborsClassifier

    X, y = imbalanced_digits
    with pytest.raises(ValueError, match="needs an oversampler that marks its synthetic rows"):
        GANAugmentedClassifier(LogisticRegression(), RandomOverSampler(), synthetic_weight=0.5).fit(X, y)
    with pytest.raises(ValueError, match="KNeighborsClassifier.fit does not"):
        GANAugmentedClassifier(KNeighborsClassifier(), _sampler(max_epochs=10**6), synthetic_weight=0.5).fit(X, y)
    with pytest.raises(ValueError, match="sample_weight or synthetic_weight, not both"):
        GANAugmentedClassifier(LogisticRegression(), _sampler(), synthetic_weight=0.5).fit(
            X, y, sample_weight=np.ones(len(y)))
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="synthetic_weight"):
        GANAugmentedClassifier(synthetic_weight=0).fit(X, y)
    with pytest.raises(InvalidParameterError, match="synthetic_weight"):
        GANAugmentedClassifier(LogisticRegression(), _sampler(max_epochs=10**6), synthetic_weight=np.inf).fit(X, y)


def test_auto_chooses_the_generator_snapshot_too_and_caches_the_snapshots(imbalanced_digits, tmp_path):
    X, y = imbalanced_digits  # 516 rows, 412 for the GAN: 25 steps an epoch at batch 16
    sampler = _sampler(max_synthetic_per_real="auto", generator_snapshots=3, max_epochs=3, cache_dir=tmp_path)
    X_res, _ = sampler.fit_resample(X, y)
    selection = sampler.selection_
    # the trained model is scored first, then the snapshots after 50 and 25 of its 75 steps
    assert [s["steps"] for s in selection["snapshots"]] == [75, 50, 25]
    best = max(selection["snapshots"], key=lambda s: max(s["scores"]))  # the first maximum
    assert selection["steps"] == best["steps"] and selection["scores"] == best["scores"]
    assert selection["max_synthetic_per_real"] == selection["candidates"][int(np.argmax(best["scores"]))]
    if selection["steps"] == 75:  # the trained model won: the output is the plain sampler's
        plain = _sampler(max_synthetic_per_real="auto", max_epochs=3).fit_resample(X, y)[0]
        np.testing.assert_array_equal(X_res, plain)
    assert len(list(tmp_path.iterdir())) == 3  # the trained model and two snapshots
    again = clone(sampler)
    np.testing.assert_array_equal(again.fit_resample(X, y)[0], X_res)
    assert again.cache_hit_ and again.selection_["snapshots"] == selection["snapshots"]
    with pytest.raises(ValueError, match="cannot take snapshots of a pretrained generator"):
        _sampler(max_synthetic_per_real="auto", generator_snapshots=2, generator=sampler.generator_).fit_resample(X, y)
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="generator_snapshots"):
        _sampler(generator_snapshots=0).fit_resample(X, y)
    with pytest.raises(ValueError, match="generator_snapshots chooses among snapshots on the validation split"):
        _sampler(generator_snapshots=2, max_synthetic_per_real=1.0).fit_resample(X, y)


def test_generator_snapshots_keep_the_sampling_network_after_equal_shares_of_training(digits):
    from ganaug.selection import GeneratorSnapshots

    X, y = digits  # 300 images at batch 32: 9 steps an epoch
    snapshots = GeneratorSnapshots(3, total_steps=27)
    gan = ConditionalDCGAN(random_state=0, **{**TINY, "max_epochs": 3}).fit(
        X[:300], y[:300], monitor=snapshots, monitor_every=snapshots.every)
    models = snapshots.models(gan)
    assert [s for s, _ in models] == [9, 18, 27] and models[-1][1] is gan
    assert [(m.n_steps_, m.n_epochs_, len(m.history_["d_loss"])) for _, m in models] == [(9, 1, 9), (18, 2, 18),
                                                                                       (27, 3, 27)]
    images = [m.sample({1: 4}, random_state=0)[0] for _, m in models]
    assert not np.allclose(images[0], images[2]) and not np.allclose(images[1], images[2])
    # taking snapshots does not change the trained model
    plain = ConditionalDCGAN(random_state=0, **{**TINY, "max_epochs": 3}).fit(X[:300], y[:300])
    np.testing.assert_array_equal(plain.sample({1: 4}, random_state=0)[0], images[2])
    assert GeneratorSnapshots(1, total_steps=50).steps == [] and GeneratorSnapshots(4, total_steps=2).steps == [1]
    with pytest.raises(ValueError, match="integer >= 1"):
        GeneratorSnapshots(0, total_steps=5)


def test_latent_anchors_and_filter_are_refused_before_training(imbalanced_digits):
    X, y = imbalanced_digits
    with pytest.raises(ValueError, match="latent_anchors or filter, not both"):
        _sampler(latent_anchors=0.3, filter=0.5, max_epochs=10**6).fit_resample(X, y)
