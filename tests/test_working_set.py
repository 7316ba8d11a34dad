"""Gated ReLU on a working set of gates (``cn.WorkingSet``): the full program's optimum
and certificate from restricted solves, and an honest stop when the set is too small."""

import warnings

import jax
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.preprocessing import StandardScaler

import cvxnn_jax as cn

from reference import cvxpy_gated_relu, planted_relu_problem

NUM_GATES = 60
CAPACITY = 24


def _diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


def _breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), 2.0 * y - 1.0


def _planted():
    X, y = planted_relu_problem(3, n=200, d=6)
    return X, (y - y.mean()) / y.std()


# lam chosen so that the optimum uses fewer than CAPACITY of the 60 gates (18, 21 and 18
# non-zero gates): the working set must find them among all 60.
PROBLEMS = [
    ("diabetes-squared", _diabetes, "squared", 1e-1),
    ("breast_cancer-logistic", _breast_cancer, "logistic", 1e-2),
    ("planted-squared", _planted, "squared", 1e-1),
]


@pytest.mark.parametrize("name,make,loss,lam", PROBLEMS, ids=[p[0] for p in PROBLEMS])
def test_working_set_reaches_the_full_optimum_with_its_certificate(name, make, loss, lam):
    X, y = make()
    gates = cn.sample_gates(jax.random.PRNGKey(1), X, NUM_GATES)
    tol = 1e-8
    sol = cn.fit(X, y, lam, gates=gates, loss=loss, tol=tol, max_steps=50_000,
                 solver=cn.WorkingSet(capacity=CAPACITY))
    reference, _ = cvxpy_gated_relu(X, y, cn.gate_masks(X, gates), lam, loss)
    objective = float(sol.objective)
    nonzero = int(np.sum(np.linalg.norm(np.asarray(sol.weights), axis=0) > 0))
    assert bool(sol.converged), cn.RESULTS[sol.result]
    assert 0 < nonzero <= CAPACITY < NUM_GATES
    np.testing.assert_allclose(objective, reference, rtol=1e-6)
    # The certificate is the full program's: it bounds the excess over the optimum on
    # all 60 gates (Clarabel's own error is ~1e-9 relative, hence the slack).
    assert float(sol.gap) >= objective - reference - 1e-9 * reference
    assert float(sol.gap) <= tol * objective
    assert float(sol.dual_objective) <= reference * (1 + 1e-9)
    # The same optimum as FISTA on every gate, and the network attains it.
    full = cn.fit(X, y, lam, gates=gates, loss=loss, tol=tol, max_steps=50_000)
    np.testing.assert_allclose(objective, float(full.objective), rtol=1e-7)
    nonconvex = float(cn.nonconvex_objective(sol.network, X, y, lam, loss=loss))
    np.testing.assert_allclose(nonconvex, objective, rtol=1e-9)


def test_too_small_a_working_set_says_so():
    X, y = _diabetes()
    gates = cn.sample_gates(jax.random.PRNGKey(1), X, NUM_GATES)
    lam = 1e-1  # 18 non-zero gates at the optimum
    with pytest.warns(cn.ConvergenceWarning, match="capacity"):
        sol = cn.fit(X, y, lam, gates=gates, tol=1e-8, max_steps=50_000,
                     solver=cn.WorkingSet(capacity=8))
    assert sol.result == cn.RESULTS.working_set_full
    assert not bool(sol.converged)
    # It stops long before max_steps, and what it reports is still an honest bound.
    assert int(sol.num_steps) < 50_000
    reference, _ = cvxpy_gated_relu(X, y, cn.gate_masks(X, gates), lam, "squared")
    assert float(sol.gap) >= float(sol.objective) - reference - 1e-9 * reference
    assert int(np.sum(np.linalg.norm(np.asarray(sol.weights), axis=0) > 0)) <= 8


def test_working_set_in_jit_and_on_paths():
    X, y = _planted()
    gates = cn.sample_gates(jax.random.PRNGKey(1), X, NUM_GATES)
    solver = cn.WorkingSet(capacity=CAPACITY)
    lams = np.array([3e-1, 2e-1, 1e-1])  # 8, 12 and 18 non-zero gates
    tol = 1e-8
    fits = [cn.fit(X, y, lam, gates=gates, tol=tol, max_steps=50_000) for lam in lams]
    expected = np.array([float(s.objective) for s in fits])

    jitted = jax.jit(lambda lam: cn.fit(X, y, lam, gates=gates, tol=tol, max_steps=50_000,
                                        solver=solver).objective)
    np.testing.assert_allclose([float(jitted(lam)) for lam in lams], expected, rtol=1e-7)
    for warm_start in (False, True):
        path = cn.fit_path(X, y, lams, gates=gates, tol=tol, max_steps=50_000, solver=solver,
                           warm_start=warm_start)
        assert bool(np.all(np.asarray(path.converged)))
        np.testing.assert_allclose(np.asarray(path.objective), expected, rtol=1e-7)


def test_a_path_reports_the_lambdas_whose_optimum_overflows_the_working_set():
    X, y = _planted()
    gates = cn.sample_gates(jax.random.PRNGKey(1), X, NUM_GATES)
    lams = np.array([1e-1, 3e-1, 2e-1])  # 18, 8 and 12 non-zero gates at the optimum
    with pytest.warns(cn.ConvergenceWarning, match="1 of 3 lambdas"):
        path = cn.fit_path(X, y, lams, gates=gates, tol=1e-8, max_steps=50_000,
                           solver=cn.WorkingSet(capacity=12), warm_start=True)
    assert np.asarray(path.converged).tolist() == [False, True, True]
    assert int(path.result._value[0]) == int(cn.RESULTS.working_set_full._value)
    expected = [float(cn.fit(X, y, lam, gates=gates, tol=1e-8, max_steps=50_000).objective)
                for lam in lams[1:]]
    np.testing.assert_allclose(np.asarray(path.objective)[1:], expected, rtol=1e-7)


def test_working_set_arguments_are_checked():
    with pytest.raises(ValueError, match="capacity"):
        cn.WorkingSet(capacity=0)
    with pytest.raises(TypeError, match="capacity"):
        cn.WorkingSet(capacity=2.5)
    assert cn.WorkingSet(capacity=np.int64(8)).capacity == 8  # static, hashable
    with pytest.raises(ValueError, match="inner_factor"):
        cn.WorkingSet(capacity=8, inner_factor=1.0)
    with pytest.raises(TypeError, match="fista"):
        cn.WorkingSet(capacity=8, fista="fista")
    X, y = _planted()
    with pytest.raises(ValueError, match="solver"):
        cn.fit(X, y, 1e-2, gates=4, model="relu", solver=cn.WorkingSet(capacity=8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cn.fit(X, y, 1e-1, gates=NUM_GATES, tol=1e-6, solver=cn.WorkingSet(capacity=CAPACITY))
