"""Projection onto the ReLU program's polyhedral cones (cvxnn_jax._cones)."""

import cvxpy as cp
import jax
import jax.numpy as jnp
import numpy as np

from cvxnn_jax._cones import empty_faces, project_cones


def _cones(seed, n=40, d=5, k=12):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    signs = np.sign(X @ rng.standard_normal((d, k)))
    W = rng.standard_normal((d, k))
    return X, signs, W


def _cvxpy_projection(w, X, signs):
    v = cp.Variable(w.shape[0])
    problem = cp.Problem(cp.Minimize(cp.sum_squares(v - w)), [cp.multiply(signs, X @ v) >= 0])
    problem.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    return v.value


def test_projection_matches_cvxpy_and_is_feasible():
    X, signs, W = _cones(0)
    project = jax.jit(project_cones, static_argnames=("chunk",))
    # A chunk smaller than the number of columns exercises the chunked loop.
    P, faces, finished = project(jnp.asarray(W), jnp.asarray(X), jnp.asarray(signs),
                                 empty_faces(5, 12, jnp.float64), chunk=5)
    assert bool(finished)
    P = np.asarray(P)
    for j in range(W.shape[1]):
        reference = _cvxpy_projection(W[:, j], X, signs[:, j])
        np.testing.assert_allclose(P[:, j], reference, rtol=0, atol=1e-7 * np.linalg.norm(W[:, j]))
    assert np.min(signs * (X @ P)) >= -1e-12
    # Moreau: the residual is in the polar cone, orthogonal to the projection.
    np.testing.assert_allclose(np.sum((W - P) * P, axis=0), 0.0, atol=1e-12)
    # The cached faces reproduce the projection on the fast path (no Lawson-Hanson).
    P_again, _, _ = project(jnp.asarray(W), jnp.asarray(X), jnp.asarray(signs), faces, chunk=5)
    np.testing.assert_allclose(np.asarray(P_again), P, rtol=0, atol=1e-12)


def test_warm_start_from_other_faces_gives_the_same_projection():
    X, signs, W = _cones(1)
    args = (jnp.asarray(X), jnp.asarray(signs))
    P_cold, faces, _ = project_cones(jnp.asarray(W), *args, empty_faces(5, 12, jnp.float64))
    # Faces learnt on other points are a (wrong) warm start; the answer must not change.
    rng = np.random.default_rng(2)
    W_new = W + 0.5 * rng.standard_normal(W.shape)
    P_warm, _, finished = project_cones(jnp.asarray(W_new), *args, faces)
    P_ref, _, _ = project_cones(jnp.asarray(W_new), *args, empty_faces(5, 12, jnp.float64))
    assert bool(finished)
    np.testing.assert_allclose(np.asarray(P_warm), np.asarray(P_ref), rtol=0, atol=1e-10)


def test_unfinished_projection_still_bounds_the_norm():
    # One Lawson-Hanson iteration per column: the points are not projections yet, but
    # their norms are upper bounds on the projections' norms (dual certificates rely on it).
    X, signs, W = _cones(3, n=80, d=6, k=10)
    args = (jnp.asarray(W), jnp.asarray(X), jnp.asarray(signs), empty_faces(6, 10, jnp.float64))
    P_exact, _, finished = project_cones(*args)
    P_short, _, finished_short = project_cones(*args, max_iter=1)
    assert bool(finished) and not bool(finished_short)
    exact = np.linalg.norm(np.asarray(P_exact), axis=0)
    short = np.linalg.norm(np.asarray(P_short), axis=0)
    assert np.all(short >= exact - 1e-12)
    assert np.any(short > exact + 1e-6)


def test_columns_bounded_below_the_threshold_skip_the_projection():
    # Faces cached on other points give each column a point w + R^T gamma (gamma >= 0);
    # where its norm is under bound_below the column is returned as that point: never
    # shorter than the projection, and under the bound. The others are projected exactly.
    X, signs, W = _cones(4, n=60, d=5, k=16)
    args = (jnp.asarray(X), jnp.asarray(signs))
    _, faces, _ = project_cones(jnp.asarray(W), *args, empty_faces(5, 16, jnp.float64))
    rng = np.random.default_rng(5)
    W_new = jnp.asarray(W + 0.3 * rng.standard_normal(W.shape))
    exact, _, _ = project_cones(W_new, *args, faces)
    exact_norms = np.linalg.norm(np.asarray(exact), axis=0)
    bound = float(np.median(exact_norms)) + 0.2
    P, _, finished = project_cones(W_new, *args, faces, bound_below=bound)
    norms = np.linalg.norm(np.asarray(P), axis=0)
    skipped = ~np.isclose(norms, exact_norms, rtol=0, atol=1e-10)
    assert bool(finished) and skipped.any() and not skipped.all()
    assert np.all(norms[skipped] <= bound) and np.all(norms[skipped] >= exact_norms[skipped])
    # So the prox of bound * ||.|| + I_K (a group soft-threshold of the projection) is
    # the same from either.
    shrink = lambda Q: Q * np.maximum(1.0 - bound / np.maximum(np.linalg.norm(Q, axis=0), 1e-300), 0.0)
    np.testing.assert_allclose(shrink(np.asarray(P)), shrink(np.asarray(exact)), rtol=0, atol=1e-12)
