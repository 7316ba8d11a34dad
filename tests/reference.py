"""CVXPY/Clarabel reference solves and shared test problems (float64)."""

from __future__ import annotations

import numpy as np

try:
    import cvxpy as cp
except ImportError:  # the benchmarks' data only, on a machine without the test extras
    cp = None


def cvxpy_gated_relu(X, y, masks, lam, loss="squared"):
    """Optimal value and weights (d, P) of the gated-ReLU program, with Clarabel."""
    X, y, masks = (np.asarray(a, dtype=np.float64) for a in (X, y, masks))
    n, d = X.shape
    P = masks.shape[1]
    W = cp.Variable((d, P))
    prediction = cp.sum(cp.multiply(masks, X @ W), axis=1)
    if loss == "squared":
        data_fit = cp.sum_squares(prediction - y) / (2 * n)
    else:
        data_fit = cp.sum(cp.logistic(-cp.multiply(y, prediction))) / n
    objective = data_fit + lam * cp.sum(cp.norm(W, 2, axis=0))
    problem = cp.Problem(cp.Minimize(objective))
    problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-9, tol_gap_rel=1e-9, tol_feas=1e-9,
                  max_iter=500)
    assert problem.status == cp.OPTIMAL, problem.status
    return problem.value, W.value


def planted_relu_problem(seed, n, d, noise=0.1, num_teachers=3):
    """Synthetic regression data from a planted two-layer ReLU teacher."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((d, num_teachers))
    a = rng.standard_normal(num_teachers)
    y = np.maximum(X @ W, 0) @ a + noise * rng.standard_normal(n)
    return X, y


def cvxpy_relu(X, y, masks, lam, loss="squared", slope=0.0):
    """Optimal value and weights (V, U), each (d, P), of the cone-constrained ReLU program."""
    X, y, masks = (np.asarray(a, dtype=np.float64) for a in (X, y, masks))
    n, d = X.shape
    P = masks.shape[1]
    V, U = cp.Variable((d, P)), cp.Variable((d, P))
    coefficients = slope + (1.0 - slope) * masks
    signs = 2.0 * masks - 1.0
    prediction = cp.sum(cp.multiply(coefficients, X @ (V - U)), axis=1)
    if loss == "squared":
        data_fit = cp.sum_squares(prediction - y) / (2 * n)
    else:
        data_fit = cp.sum(cp.logistic(-cp.multiply(y, prediction))) / n
    objective = data_fit + lam * (cp.sum(cp.norm(V, 2, axis=0)) + cp.sum(cp.norm(U, 2, axis=0)))
    constraints = [cp.multiply(signs, X @ V) >= 0, cp.multiply(signs, X @ U) >= 0]
    problem = cp.Problem(cp.Minimize(objective), constraints)
    problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-9, tol_gap_rel=1e-9, tol_feas=1e-9,
                  max_iter=500)
    # Clarabel reaches 1e-8 on these cone programs but often flags 1e-9 "inaccurate";
    # the values agree to ~1e-8 relative either way, far inside the tests' 1e-6.
    assert problem.status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE), problem.status
    return problem.value, V.value, U.value


# ---- Issue 5: 1-D Lasso dictionaries and threshold networks --------------------------
def _solve_clarabel(problem):
    problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10,
                  max_iter=500)
    assert problem.status == cp.OPTIMAL, problem.status
    return problem.value


def cvxpy_lasso(A, y, lam, offset=False, loss="squared"):
    """``min_z L(A z [+ xi], y) + lam ||z||_1`` (library scaling); (value, z, xi)."""
    A, y = np.asarray(A, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n, p = A.shape
    z = cp.Variable(p)
    xi = cp.Variable() if offset else 0.0
    prediction = A @ z + xi
    if loss == "squared":
        data_fit = cp.sum_squares(prediction - y) / (2 * n)
    else:
        data_fit = cp.sum(cp.logistic(-cp.multiply(y, prediction))) / n
    value = _solve_clarabel(cp.Problem(cp.Minimize(data_fit + lam * cp.norm1(z))))
    return value, z.value, (xi.value if offset else 0.0)


def cvxpy_min_l1_interpolation(A, y):
    """``min ||z||_1 subject to A z + xi 1 = y``: (value, z, xi)."""
    A, y = np.asarray(A, dtype=np.float64), np.asarray(y, dtype=np.float64)
    z, xi = cp.Variable(A.shape[1]), cp.Variable()
    value = _solve_clarabel(cp.Problem(cp.Minimize(cp.norm1(z)), [A @ z + xi == y]))
    return value, z.value, xi.value


def cvxpy_shattered_threshold(y, lam):
    """``min_delta 1/(2n)||delta - y||^2 + lam ((max delta)_+ + (max -delta)_+)``."""
    y = np.asarray(y, dtype=np.float64)
    delta = cp.Variable(y.shape[0])
    penalty = cp.pos(cp.max(delta)) + cp.pos(cp.max(-delta))
    objective = cp.sum_squares(delta - y) / (2 * y.shape[0]) + lam * penalty
    return _solve_clarabel(cp.Problem(cp.Minimize(objective))), delta.value
