"""Bad input is refused before tracing, with a message that names the argument."""

import jax
import numpy as np
import pytest

import cvxnn_jax as cn

rng = np.random.default_rng(0)
X = rng.standard_normal((20, 3))
y = rng.standard_normal(20)
labels = np.where(y > 0, 1.0, -1.0)
gates = rng.standard_normal((3, 5))


def _with(array, index, value):
    array = array.copy()
    array[index] = value
    return array


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(X=X[:, 0]), ValueError, "X must be a 2-D"),
        (dict(X=np.zeros((0, 3)), y=np.zeros(0)), ValueError, "X is empty"),
        (dict(X=_with(X, (2, 1), np.nan)), ValueError, "X contains NaN or inf"),
        (dict(X=_with(X, (0, 0), np.inf)), ValueError, "X contains NaN or inf"),
        (dict(X="data"), TypeError, "X must be an array"),
        (dict(y=y[:-1]), ValueError, "y has 19 rows but X has 20"),
        (dict(y=np.stack([y, y], 1)), ValueError, "y must have shape"),
        (dict(y=_with(y, 3, np.nan)), ValueError, "y contains NaN or inf"),
        (dict(lam=-1e-3), ValueError, "lam must be >= 0"),
        (dict(lam=np.nan), ValueError, "lam must be finite"),
        (dict(lam=np.ones(2)), ValueError, "lam must be a scalar"),
        (dict(gates=0), ValueError, "must be >= 1"),
        (dict(gates=gates[:2]), ValueError, "gates must have shape"),
        (dict(gates=_with(gates, (0, 0), np.nan)), ValueError, "gates contains NaN"),
        (dict(loss="hinge"), ValueError, "loss must be one of"),
        (dict(loss="logistic"), ValueError, r"y must hold labels in \{-1, \+1\}"),
        (dict(model="deep"), ValueError, "model must be one of"),
        (dict(solver="admm"), ValueError, "solver must be"),
        (dict(tol=-1.0), ValueError, "tol must be"),
        (dict(max_steps=0), ValueError, "max_steps must be"),
        (dict(max_steps=100.5), TypeError, "max_steps must be a whole number"),
        (dict(bias=1), TypeError, "bias must be a bool"),
        (dict(tol=None), TypeError, "tol must be a number"),
        (dict(max_steps=10**12), ValueError, r"max_steps must be at most 2\*\*31 - 1"),
        (dict(gates=5, key=1), TypeError, "key must be a jax.random key"),
    ],
)
def test_fit_rejects_bad_input(kwargs, error, match):
    arguments = dict(X=X, y=y, lam=1e-2, gates=gates)
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        cn.fit(**arguments)


def test_logistic_accepts_pm_one_labels():
    assert bool(cn.fit(X, labels, 1e-2, gates=gates, loss="logistic").converged)


@pytest.mark.parametrize("num_gates,error", [(0, ValueError), (-3, ValueError), (2.5, TypeError)])
def test_sample_gates_rejects_bad_num_gates(num_gates, error):
    with pytest.raises(error, match="num_gates"):
        cn.sample_gates(jax.random.PRNGKey(0), X, num_gates)


def test_sample_gates_rejects_a_seed_for_a_key():
    with pytest.raises(TypeError, match="key must be a jax.random key"):
        cn.sample_gates(0, X, 5)
    # Both kinds of key are taken.
    assert cn.sample_gates(jax.random.key(0), X, 5).shape[0] == 3


def test_half_precision_data_is_solved_in_float32():
    solution = cn.fit(X.astype(np.float16), y, 1e-2, gates=gates, tol=1e-3)
    assert solution.objective.dtype == np.float32 and bool(solution.converged)


def test_growth_outside_fit_is_refused_clearly():
    with pytest.raises(ValueError, match="only supported by cvxnn_jax.fit"):
        cn.fit_path(X, y, np.array([1e-2, 1e-3]), gates="grow")


def test_a_path_of_networks_says_so():
    # fit_path's network holds one network per lambda; called as one it used to read the
    # lambdas' axis as the features ("x must be one example of shape (2,)").
    path = cn.fit_path(X, y, np.array([1e-2, 1e-3]), gates=gates)
    with pytest.raises(ValueError, match="holds 2 networks along a leading axis"):
        path.network.predict(X)
    first = jax.tree.map(lambda a: a[0], path.network)
    np.testing.assert_allclose(first.predict(X), jax.vmap(first)(X), rtol=1e-12)
    with pytest.raises(ValueError, match=r"X must be a batch of shape \(n, 3\)"):
        first.predict(X[0])


def test_sample_gates_rejects_bad_data():
    with pytest.raises(ValueError, match="X contains NaN"):
        cn.sample_gates(jax.random.PRNGKey(0), _with(X, (0, 0), np.nan), 5)


def test_sampling_inside_jit_is_refused_clearly():
    with pytest.raises(TypeError, match="gates must be an array"):
        jax.jit(lambda X: cn.fit(X, y, 1e-2, gates=5).objective)(X)


def test_sample_gates_inside_jit_is_refused_clearly():
    with pytest.raises(TypeError, match="sample_gates cannot run under jax.jit"):
        jax.jit(lambda X: cn.sample_gates(jax.random.PRNGKey(0), X, 5))(X)
    with pytest.raises(TypeError, match="sample_gates cannot run under jax.jit"):
        jax.jit(lambda key: cn.sample_gates(key, X, 5))(jax.random.PRNGKey(0))


def test_networks_refuse_a_batch():
    # Called on (n, d), a network's products would broadcast and sum every example into
    # one number; it must say that it takes one example instead.
    gated = cn.fit(X, y, 1e-2, gates=gates).network
    relu = cn.fit(X, y, 1e-2, gates=5, model="relu", bias=True, solver="fista").network
    threshold = cn.fit_threshold(X, y, 1e-2, gates=gates).network
    deep = cn.deep_threshold_network(X, np.sign(y))
    for network in (gated, relu, threshold, deep):
        with pytest.raises(ValueError, match=r"x must be one example of shape \(3,\).*predict"):
            network(X)
        with pytest.raises(ValueError, match=r"x must be one example of shape \(3,\), got shape \(4,\)"):
            network(np.ones(4))
        np.testing.assert_allclose(network(X[1]), network.predict(X)[1], rtol=1e-12)
        if hasattr(network, "pruned"):
            with pytest.raises(TypeError, match="pruned.. changes the number of units"):
                jax.jit(lambda network: network.pruned())(network)


def test_nonconvex_objective_checks_y_and_lam():
    network = cn.fit(X, y, 1e-2, gates=gates).network
    with pytest.raises(ValueError, match="y has 5 rows but X has 20"):
        cn.nonconvex_objective(network, X, y[:5], 1e-2)
    with pytest.raises(ValueError, match="lam must be >= 0"):
        cn.nonconvex_objective(network, X, y, -1e-2)
    with pytest.raises(ValueError, match=r"x must be one example of shape \(3,\)"):
        cn.nonconvex_objective(network, X[:, :2], y, 1e-2)
    # The logistic loss wants labels in {-1, +1}, as fit does ({0, 1} gave a number).
    with pytest.raises(ValueError, match=r"y must hold labels in \{-1, \+1\}"):
        cn.nonconvex_objective(network, X, (labels + 1) / 2, 1e-2, loss="logistic")
    assert np.isfinite(float(cn.nonconvex_objective(network, X, labels, 1e-2, loss="logistic")))
