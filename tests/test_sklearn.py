"""The scikit-learn estimators (cvxnn_jax/sklearn.py): sklearn's estimator checks,
pipelines and grid search, and equality with ``cvxnn_jax.fit``.

Cost: every new data shape (and every new number of distinct patterns) compiles the
solver again, about 5 s of CPU each on this project's 2-core machine. scikit-learn's
checks fit on 38 different (shape, patterns, loss) combinations, so all of them take
about 4 CPU-minutes (5 minutes of wall time on the shared machine). CI runs them all.
For a quick local run, ``CVXNN_FAST_SKLEARN_CHECKS=1`` skips, for that reason only,
the checks in ``SLOW_CHECKS`` (both estimators) and in ``SLOW_REGRESSOR_CHECKS``
(checks of shared code, then run on the classifier only). The tests
below reuse shapes on purpose (the breast-cancer subsample with 8 gates, which give 8
distinct patterns on every fold; the 200 x 10 data of check_regressors_train).

Checks skipped by scikit-learn itself in this environment (they raise ``SkipTest``):
``check_classifier_data_not_an_array`` / ``check_regressor_data_not_an_array`` need
pandas (not installed); ``check_array_api_input`` needs ``SCIPY_ARRAY_API=1`` (with
it, it passes). The sample-weight checks are not generated: the estimators take no
``sample_weight``.
"""

import os
import pickle

import jax
import numpy as np
import pytest
import sklearn.exceptions
from scipy.special import expit
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import cvxnn_jax as cn
from cvxnn_jax.sklearn import ConvergenceWarning, ConvexReLUClassifier, ConvexReLURegressor

# Checks that pass but are skipped by default (both estimators) because each fits on
# data (shapes or pattern counts) that the kept checks do not use, so each costs its
# own compile (5-10 s here). What stays covers every method of both estimators:
# check_classifiers_train / check_regressors_train (accuracy, decision_function,
# predict_proba, float32 and read-only inputs), pickling, pipelines, parameter and
# attribute hygiene, sample-order and subset invariance, input validation.
SLOW_CHECKS = {
    "check_fit_score_takes_y",
    "check_supervised_y_2d",
    "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit",
    "check_estimators_dtypes",
    "check_dtype_object",
    "check_estimators_nan_inf",
    "check_f_contiguous_array_estimator",
    "check_classifier_data_not_an_array",  # ends in SkipTest without pandas anyway
    "check_classifiers_classes",
    "check_decision_proba_consistency",  # also test_classifier_matches_fit_binary
    "check_fit2d_1feature",
    "check_fit2d_1sample",
    "check_fit_idempotent",  # also the test_*_matches_fit tests
    "check_fit_check_is_fitted",
    "check_n_features_in",
    "check_regressors_no_decision_function",
    "check_regressors_int",
    "check_regressor_data_not_an_array",  # ends in SkipTest without pandas anyway
}
# Checks of code the two estimators share (``_ConvexReLUBase``: validation, fitted
# attributes, pickling, prediction), run on the classifier only by default; the
# regressor keeps check_regressors_train and every check that does not fit.
SLOW_REGRESSOR_CHECKS = {
    "check_estimators_overwrite_params",
    "check_estimators_fit_returns_self",
    "check_readonly_memmap_input",
    "check_pipeline_consistency",
    "check_estimators_pickle",
    "check_dont_overwrite_parameters",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_dict_unchanged",
    "check_fit2d_predict1d",
}
ALL_CHECKS = os.environ.get("CVXNN_FAST_SKLEARN_CHECKS", "") in ("", "0")

TOL, MAX_STEPS = 1e-4, 100_000  # the estimators' defaults


@parametrize_with_checks([ConvexReLUClassifier(random_state=0), ConvexReLURegressor(random_state=0)])
def test_sklearn_estimator_checks(estimator, check):
    name = getattr(check, "func", check).__name__
    slow = SLOW_CHECKS | (SLOW_REGRESSOR_CHECKS if isinstance(estimator, ConvexReLURegressor)
                          else set())
    if name in slow and not ALL_CHECKS:
        pytest.skip(f"{name} compiles the solver for new shapes (slow); "
                    "unset CVXNN_FAST_SKLEARN_CHECKS to run it")
    check(estimator)


def _breast_cancer(n_malignant=45, n_benign=75):
    """A stratified subsample (class counts divisible by 3: equal 3-fold splits) and
    the rows left out."""
    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(0)
    rows = np.concatenate([rng.choice(np.flatnonzero(y == 0), n_malignant, replace=False),
                           rng.choice(np.flatnonzero(y == 1), n_benign, replace=False)])
    rest = np.setdiff1d(np.arange(len(y)), rows)
    return X[rows], y[rows], X[rest], y[rest]


def _scaled_subsample():
    X, y, _, _ = _breast_cancer()
    return StandardScaler().fit_transform(X), y


def test_grid_search_pipeline_breast_cancer():
    X, y, X_rest, y_rest = _breast_cancer()
    pipeline = make_pipeline(StandardScaler(), ConvexReLUClassifier(num_gates=8, random_state=0))
    search = GridSearchCV(pipeline, {"convexreluclassifier__lam": [1e-3, 1e-2, 1e-1]}, cv=3)
    search.fit(X, y)
    assert search.best_score_ > 0.9
    assert search.score(X_rest, y_rest) > 0.9
    best = search.best_estimator_[-1]
    assert best.lam == search.best_params_["convexreluclassifier__lam"]
    assert best.converged_ and best.gates_.shape == (X.shape[1] + 1, 8)
    assert best.objective_ > 0 and 0 <= best.gap_ <= TOL * best.objective_


def test_classifier_matches_fit_binary():
    X, y = _scaled_subsample()
    labels = np.array(["malignant", "benign"])[y]  # classes_ sorted: "malignant" is +1
    lam = 1e-2
    clf = ConvexReLUClassifier(lam, num_gates=8, random_state=3).fit(X, labels)
    assert list(clf.classes_) == ["benign", "malignant"]
    signs = np.where(labels == "malignant", 1.0, -1.0)
    solution = cn.fit(X, signs, lam, gates=8, loss="logistic", tol=TOL, max_steps=MAX_STEPS,
                      bias=True, key=jax.random.PRNGKey(3))
    outputs = np.asarray(solution.network.predict(X))

    np.testing.assert_array_equal(clf.gates_, solution.gates)
    np.testing.assert_allclose(clf.decision_function(X), outputs, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), np.where(outputs > 0, "malignant", "benign"))
    np.testing.assert_allclose(clf.predict_proba(X)[:, 1], expit(outputs), rtol=1e-12)
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0, rtol=1e-12)
    assert clf.objective_ == float(solution.objective) and clf.gap_ == float(solution.gap)
    assert clf.converged_ and clf.n_iter_ == int(solution.num_steps)
    assert isinstance(clf.predict(X), np.ndarray) and clf.decision_function(X).dtype == np.float64


def test_classifier_matches_fit_one_vs_rest():
    X, y = _scaled_subsample()
    labels = np.digitize(X[:, 0], np.quantile(X[:, 0], [1 / 3, 2 / 3]))  # 3 classes
    lam = 1e-2
    clf = ConvexReLUClassifier(lam, num_gates=8, random_state=0).fit(X, labels)
    outputs = np.stack([
        np.asarray(cn.fit(X, np.where(labels == k, 1.0, -1.0), lam, gates=8, loss="logistic",
                          tol=TOL, max_steps=MAX_STEPS, bias=True,
                          key=jax.random.PRNGKey(0)).network.predict(X))
        for k in range(3)
    ], axis=1)

    np.testing.assert_allclose(clf.decision_function(X), outputs, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), np.argmax(outputs, axis=1))
    sigmoids = expit(outputs)
    np.testing.assert_allclose(clf.predict_proba(X), sigmoids / sigmoids.sum(1, keepdims=True),
                               rtol=1e-12)
    assert clf.converged_.shape == clf.objective_.shape == clf.gap_.shape == (3,)
    assert clf.solution_.weights.shape[0] == 3  # solutions stacked over the classes
    assert clf.score(X, labels) > 0.8


def test_regressor_matches_fit():
    # 200 x 10 data with 100 gates (100 distinct patterns): the shapes of
    # check_regressors_train, so this reuses its compiled solver when run after it.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 10))
    target = np.maximum(X[:, 0], 0.0) - np.abs(X[:, 1]) + 0.1 * rng.normal(size=200)
    lam = 1e-3
    reg = ConvexReLURegressor(lam, random_state=0).fit(X, target)
    solution = cn.fit(X, target, lam, gates=100, tol=TOL, max_steps=MAX_STEPS, bias=True,
                      key=jax.random.PRNGKey(0))
    np.testing.assert_array_equal(reg.gates_, solution.gates)
    np.testing.assert_allclose(reg.predict(X), np.asarray(solution.network.predict(X)),
                               rtol=0, atol=1e-12)
    assert reg.objective_ == float(solution.objective) and reg.converged_
    assert reg.score(X, target) > 0.8
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(reg)).predict(X), reg.predict(X))


def test_convergence_warning_is_both_kinds():
    assert issubclass(ConvergenceWarning, cn.ConvergenceWarning)
    assert issubclass(ConvergenceWarning, sklearn.exceptions.ConvergenceWarning)
    X, y = _scaled_subsample()
    clf = ConvexReLUClassifier(1e-3, num_gates=8, random_state=0, max_steps=1)
    with pytest.warns(ConvergenceWarning, match="ConvexReLUClassifier did not converge"):
        clf.fit(X, y)
    assert not clf.converged_


def test_float32_when_x64_is_off():
    X, y = _scaled_subsample()
    with jax.enable_x64(False):
        clf = ConvexReLUClassifier(1e-2, num_gates=8, random_state=0).fit(X, y)
        assert clf.gates_.dtype == np.float32 and clf.solution_.weights.dtype == np.float32
        assert clf.decision_function(X).dtype == np.float32 and isinstance(clf.predict(X), np.ndarray)
        assert clf.converged_ and clf.score(X, y) > 0.9
    assert jax.config.jax_enable_x64  # the flag the tests set is untouched
