"""Threshold-activation networks as Lasso problems (issue 5, DESIGN.md section 4 item 5)."""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cvxnn_jax as cn
from cvxnn_jax._programs.threshold import layer_cake, max_penalty

from reference import cvxpy_lasso, cvxpy_shattered_threshold

_nonconvex_objective = eqx.filter_jit(cn.nonconvex_objective)


def _labels(seed, n, d):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.where(X[:, 0] * X[:, 1] + 0.3 * rng.standard_normal(n) > 0, 1.0, -1.0)
    return X, y


def _explicit_objective(net, X, y, lam, last_amplitudes):
    """``1/(2n)||f(X) - y||^2 + lam/2 (||s||^2 + ||alpha||^2)`` from the weights."""
    fit = 0.5 * np.mean((np.asarray(net.predict(X)) - y) ** 2)
    return fit + 0.5 * lam * (np.sum(np.asarray(last_amplitudes) ** 2)
                              + np.sum(np.asarray(net.alpha) ** 2))


# ------------------------------------------------------------ shattered closed form
@pytest.mark.parametrize("beta", [0.0, 1.0, 4.0, 11.0, 40.0])
def test_binary_labels_closed_form_and_deep_network(beta):
    X, y = _labels(0, 24, 3)
    n = y.shape[0]
    n_pos, n_neg = np.sum(y > 0), np.sum(y < 0)
    lam = beta / n
    delta, optimum = cn.shattered_threshold_solution(y, lam)
    expected = np.where(y > 0, max(1 - beta / n_pos, 0.0), -max(1 - beta / n_neg, 0.0))
    np.testing.assert_allclose(delta, expected, rtol=1e-14, atol=1e-15)
    value = 0.5 * np.mean((expected - y) ** 2) + lam * (expected.max(initial=0) + (-expected).max(initial=0))
    np.testing.assert_allclose(optimum, value, rtol=1e-14)
    # A three-layer threshold network attains it.
    sol = cn.fit_deep_threshold(X, y, lam, key=jax.random.PRNGKey(3))
    net = sol.network
    assert isinstance(net, cn.DeepThresholdNetwork) and len(net.weights) == 2
    np.testing.assert_allclose(net.predict(X), expected, atol=1e-14)
    np.testing.assert_allclose(_explicit_objective(net, X, y, lam, net.amplitudes[-1]), value,
                               rtol=1e-12)
    np.testing.assert_allclose(_nonconvex_objective(net, X, y, lam), value, rtol=1e-12)


def test_closed_form_equals_the_lasso_over_all_patterns():
    """The shattered program is the 2-layer Lasso with *every* binary pattern as a column."""
    rng = np.random.default_rng(1)
    n = 7
    patterns = np.array(list(itertools.product([0.0, 1.0], repeat=n))).T[:, 1:]  # (n, 127)
    for y in (np.where(rng.standard_normal(n) > 0, 1.0, -1.0), rng.standard_normal(n)):
        for beta in (0.3, 1.7):  # away from beta = n_+- where delta sits at a kink
            lam = beta / n
            reference, _, _ = cvxpy_lasso(patterns, y, lam)
            delta, optimum = cn.shattered_threshold_solution(y, lam)
            np.testing.assert_allclose(optimum, reference, rtol=1e-7)
            direct, delta_ref = cvxpy_shattered_threshold(y, lam)
            np.testing.assert_allclose(optimum, direct, rtol=1e-7)
            np.testing.assert_allclose(delta, delta_ref, atol=1e-6)


def test_closed_form_on_real_targets_is_optimal_and_jittable():
    rng = np.random.default_rng(2)
    y = rng.standard_normal(15) * 2.0
    lams = jnp.array([0.0, 0.05, 0.3, 10.0])
    deltas, optima = jax.jit(jax.vmap(cn.shattered_threshold_solution, in_axes=(None, 0)))(y, lams)
    np.testing.assert_allclose(deltas[0], y, rtol=1e-14)  # no penalty: interpolate
    np.testing.assert_allclose(deltas[-1], 0.0, atol=1e-15)  # huge penalty: all zero
    for lam, delta, optimum in zip(lams[1:3], deltas[1:3], optima[1:3]):
        reference, _ = cvxpy_shattered_threshold(y, float(lam))
        np.testing.assert_allclose(optimum, reference, rtol=1e-7)
        # Optimality: no perturbation does better.
        objective = lambda d: 0.5 * jnp.mean((d - y) ** 2) + lam * max_penalty(d)
        steps = 1e-3 * rng.standard_normal((200, y.shape[0]))
        assert np.all(jax.vmap(objective)(delta + steps) >= optimum - 1e-15)


def test_layer_cake_is_an_exact_cheapest_decomposition():
    delta = jnp.array([0.5, -1.0, 2.0, 2.0, 0.0, -0.25])
    patterns, z = layer_cake(delta)
    np.testing.assert_allclose(patterns.astype(float) @ z, delta, atol=1e-15)
    np.testing.assert_allclose(jnp.sum(jnp.abs(z)), 3.0, rtol=1e-15)
    np.testing.assert_allclose(max_penalty(delta), 3.0)


# ------------------------------------------------------------ two-layer Lasso
@pytest.mark.parametrize("loss,lam", [("squared", 0.02), ("squared", 0.1), ("logistic", 0.02)])
def test_two_layer_threshold_lasso_matches_cvxpy_and_network(loss, lam):
    rng = np.random.default_rng(3)
    n, d = 30, 3
    X = rng.standard_normal((n, d))
    y = np.sin(X @ rng.standard_normal(d)) + 0.1 * rng.standard_normal(n)
    if loss == "logistic":
        y = np.where(y > np.median(y), 1.0, -1.0)
    # The zero gate gives the all-ones pattern (a penalised bias).
    gates = np.concatenate([np.zeros((d, 1)), rng.standard_normal((d, 40))], axis=1)
    tol = 1e-9
    sol = cn.fit_threshold(X, y, lam, gates=gates, loss=loss, tol=tol)
    masks = np.asarray(cn.gate_masks(X, gates))
    reference, _, _ = cvxpy_lasso(masks, y, lam, loss=loss)
    objective = float(sol.objective)
    assert bool(sol.converged)
    np.testing.assert_allclose(objective, reference, rtol=1e-6)
    assert objective - reference - 1e-9 * reference <= float(sol.gap) <= tol * objective
    net = sol.network
    assert isinstance(net, cn.ThresholdNetwork)
    np.testing.assert_allclose(net.predict(X), masks @ np.asarray(sol.weights), atol=1e-12)
    np.testing.assert_allclose(_nonconvex_objective(net, X, y, lam, loss=loss), objective, rtol=1e-9)
    if loss == "squared":
        np.testing.assert_allclose(_explicit_objective(net, X, y, lam, net.amplitudes), objective,
                                   rtol=1e-9)
    pruned = net.pruned()
    assert 0 < pruned.alpha.shape[0] < gates.shape[1]
    np.testing.assert_allclose(pruned.predict(X), net.predict(X), atol=1e-12)


def test_bias_option_and_sampled_gates_on_one_dimensional_data():
    """With bias and enumerated gates on 1-D data the dictionary holds every threshold
    pattern, the all-ones pattern (a penalised bias) included."""
    rng = np.random.default_rng(4)
    x = np.sort(rng.uniform(-1, 1, 30))
    y = np.where(x > 0.2, 1.0, 0.0) + 0.1 * rng.standard_normal(30)
    lam = 0.01
    gates = cn.enumerate_gates_1d(x)
    masks = np.asarray(cn.gate_masks(cn.add_bias_column(x[:, None]), gates))
    assert np.any(np.all(masks == 1, axis=0))
    sol = cn.fit_threshold(x[:, None], y, lam, gates=gates, bias=True, tol=1e-10)
    reference, _, _ = cvxpy_lasso(masks, y, lam)
    np.testing.assert_allclose(sol.objective, reference, rtol=1e-6)
    assert sol.network.bias and sol.network.gates.shape == (2, gates.shape[1])
    np.testing.assert_allclose(sol.network.predict(x[:, None]), sol.network.predict(x), atol=1e-15)
    np.testing.assert_allclose(_nonconvex_objective(sol.network, x[:, None], y, lam),
                               sol.objective, rtol=1e-9)
    # Sampled gates are reproducible from the key.
    a = cn.fit_threshold(x[:, None], y, lam, gates=20, bias=True, key=jax.random.PRNGKey(5))
    b = cn.fit_threshold(x[:, None], y, lam, gates=20, bias=True, key=jax.random.PRNGKey(5))
    np.testing.assert_array_equal(a.gates, b.gates)
    assert a.gates.shape[0] == 2 and 1 <= a.gates.shape[1] <= 20


# ------------------------------------------------------------ validation
X_ok, y_ok = _labels(9, 10, 2)


def _with(array, index, value):
    array = array.copy()
    array[index] = value
    return array


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(X=X_ok[:, 0]), ValueError, "X must be a 2-D"),
        (dict(X=np.zeros((0, 2)), y=np.zeros(0)), ValueError, "X is empty"),
        (dict(X=_with(X_ok, (1, 1), np.inf)), ValueError, "X contains NaN or inf"),
        (dict(y=y_ok[:-1]), ValueError, "y has 9 rows but X has 10"),
        (dict(y=_with(y_ok, 0, np.nan)), ValueError, "y contains NaN or inf"),
        (dict(lam=-1.0), ValueError, "lam must be >= 0"),
        (dict(gates=np.ones((3, 4))), ValueError, "gates must have shape"),
        (dict(gates=0), ValueError, "gates .* must be >= 1"),
        (dict(loss="hinge"), ValueError, "loss must be one of"),
        (dict(loss="logistic", y=y_ok * 2), ValueError, r"y must hold labels"),
        (dict(bias=1), TypeError, "bias must be a bool"),
        (dict(solver="adam"), TypeError, "solver must be"),
    ],
)
def test_fit_threshold_validation_names_the_argument(kwargs, error, match):
    args = dict(X=X_ok, y=y_ok, lam=0.01, gates=np.ones((2, 3)))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        cn.fit_threshold(args.pop("X"), args.pop("y"), **args)


def test_deep_threshold_validation():
    with pytest.raises(ValueError, match="repeated rows"):
        cn.fit_deep_threshold(np.ones((3, 2)), np.array([1.0, -1.0, 1.0]), 0.1)
    with pytest.raises(ValueError, match="y has 9 rows but X has 10"):
        cn.fit_deep_threshold(X_ok, y_ok[:-1], 0.1)
    with pytest.raises(ValueError, match="lam must be >= 0"):
        cn.fit_deep_threshold(X_ok, y_ok, -0.1)
    with pytest.raises(ValueError, match="X contains NaN"):
        cn.fit_deep_threshold(_with(X_ok, (0, 0), np.nan), y_ok, 0.1)
    with pytest.raises(ValueError, match=r"delta must have shape \(10,\)"):
        cn.deep_threshold_network(X_ok, np.zeros(4))
