"""Regularisation paths: fit_path equals fit at every lambda, in one compilation.

The gated tests share one problem shape (and so the compiled solves) to keep the
suite fast.
"""

import jax
import jax.monitoring
import jax.numpy as jnp
import numpy as np
import pytest

import cvxnn_jax as cn

from reference import planted_relu_problem

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
LAMS = np.array([3e-3, 1e-1, 1e-2, 3e-2, 1e-3, 3e-4])  # any order
OPTIONS = dict(tol=1e-10, max_steps=100_000)


def _count_compiles(fn):
    count = []
    listener = lambda name, *args, **kwargs: count.append(name) if name == COMPILE_EVENT else None
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        result = fn()
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    return len(count), result


def _data(seed, loss="squared", n=60, d=4):
    X, y = planted_relu_problem(seed, n=n, d=d)
    if loss == "logistic":
        y = np.where(y > np.median(y), 1.0, -1.0)
    return X, y


@pytest.fixture(scope="module")
def gates():
    X, _ = _data(0)
    return cn.sample_gates(jax.random.PRNGKey(0), X, 12)


def _assert_equals_fits(path, fits, rtol):
    for k, fit in enumerate(fits):
        np.testing.assert_allclose(path.objective[k], fit.objective, rtol=rtol)
        scale = float(jnp.max(jnp.abs(fit.weights)))
        np.testing.assert_allclose(path.weights[k], fit.weights, rtol=0, atol=rtol * scale)
        np.testing.assert_allclose(path.network.w2[k], fit.network.w2, rtol=0,
                                   atol=rtol * float(jnp.max(jnp.abs(fit.network.w2))))
        assert bool(path.converged[k]) and path.lam[k] == fit.lam


COLD, WARM = {}, dict(warm_start=True)
# Four lanes for the 6 lambdas: the two smallest take the lanes of the first two solves
# to stop (with warm_start, starting from the smallest lambda taken by then).
BLOCKED, BLOCKED_WARM = dict(lanes=4), dict(lanes=4, warm_start=True)


@pytest.mark.parametrize("loss,modes", [("squared", (COLD, WARM, BLOCKED, BLOCKED_WARM)),
                                        ("logistic", (COLD, BLOCKED))])
def test_gated_path_equals_fits_in_one_compilation(gates, loss, modes):
    X, y = _data(0, loss)
    fits = [cn.fit(X, y, lam, gates=gates, loss=loss, **OPTIONS) for lam in LAMS]
    first = True
    for mode in modes:
        compiles, path = _count_compiles(
            lambda: cn.fit_path(X, y, LAMS, gates=gates, loss=loss, **mode, **OPTIONS))
        # One compilation for the whole path (the first call of the session also compiles
        # a few eager operations of the argument checks, hence <= 3 there).
        assert compiles == 1 or (compiles <= 3 and first), mode
        first = False
        assert path.weights.shape == (len(LAMS),) + fits[0].weights.shape
        assert all(leaf.shape[0] == len(LAMS) for leaf in jax.tree.leaves(path))
        _assert_equals_fits(path, fits, rtol=1e-6)
        if not mode.get("warm_start"):
            # Cold lanes follow fit's steps exactly, the Newton polish included (it runs
            # one lane at a time, outside the vmapped steps).
            assert path.num_steps.tolist() == [int(f.num_steps) for f in fits], mode
        # Another path of the same shapes (new lambdas, new data) does not recompile.
        X2, y2 = _data(1, loss)
        compiles, _ = _count_compiles(
            lambda: cn.fit_path(X2, y2, 2 * LAMS, gates=gates, loss=loss, **mode, **OPTIONS))
        assert compiles == 0, mode
    if WARM in modes:
        # Each warm-started solve starts from the previous one's solution: with a budget
        # of 20 steps per lambda it ends closer to the optimum than a cold start.
        # (Step counts to tol are no test: the Newton polish makes cold solves as quick.)
        optimum = np.array([float(f.objective) for f in fits])
        with pytest.warns(cn.ConvergenceWarning):
            excess = [
                np.sum(np.asarray(cn.fit_path(X, y, LAMS, gates=gates, loss=loss, tol=1e-10,
                                              max_steps=20, **mode).objective) - optimum)
                for mode in (COLD, WARM, BLOCKED_WARM)
            ]
        assert 0 <= excess[1] < 0.75 * excess[0]  # measured: 0.030 vs 0.059
        # In four lanes only the last two lambdas start warm: in between.
        assert excess[1] < excess[2] < 0.9 * excess[0]  # measured: 0.047


def test_fit_path_inside_jit_and_reports_failures(gates):
    X, y = _data(0)
    objectives = jax.jit(lambda X, lams: cn.fit_path(X, y, lams, gates=gates, **OPTIONS).objective)(
        jnp.asarray(X), jnp.asarray(LAMS))
    np.testing.assert_allclose(objectives, cn.fit_path(X, y, LAMS, gates=gates, **OPTIONS).objective,
                               rtol=1e-12)
    lams = LAMS.copy()
    lams[1] = 10.0  # trivially optimal (the zero network): converges at once
    with pytest.warns(cn.ConvergenceWarning, match=r"5 of 6 lambdas \(0.003, 0.01,"):
        path = cn.fit_path(X, y, lams, gates=gates, tol=1e-12, max_steps=20)
    assert path.converged.tolist() == [False, True, False, False, False, False]
    assert int(path.result._value[0]) == int(cn.RESULTS.max_steps_reached._value)
    # Two queued lanes: the first lane's solve (lam 10) stops at its first certificate and
    # the lane is refilled at once; every other solve stops at max_steps, uncertified.
    with pytest.warns(cn.ConvergenceWarning, match="5 of 6 lambdas"):
        queued = cn.fit_path(X, y, lams, gates=gates, tol=1e-12, max_steps=20, lanes=2)
    assert queued.converged.tolist() == path.converged.tolist()
    assert queued.num_steps.tolist() == [20, 0, 20, 20, 20, 20]
    np.testing.assert_allclose(queued.objective, path.objective, rtol=1e-12)
    with pytest.raises(Exception, match="did not converge"):
        cn.fit_path(X, y, lams, gates=gates, tol=1e-12, max_steps=20, throw=True)


@pytest.mark.parametrize("solver,modes", [
    ("admm", (COLD, WARM)),
    # Projected FISTA runs the queue of lanes (fista_queue), like gated ReLU.
    ("fista", (COLD, WARM, dict(lanes=2), dict(lanes=2, warm_start=True)))])
def test_relu_path_equals_fits(solver, modes):
    X, y = planted_relu_problem(2, n=40, d=3)
    gates = cn.sample_gates(jax.random.PRNGKey(2), X, 8)
    lams = np.array([3e-2, 1e-2, 1e-1])
    options = dict(gates=gates, model="relu", solver=solver, tol=1e-6, feasibility_tol=1e-8,
                   max_steps=200_000)
    fits = [cn.fit(X, y, lam, **options) for lam in lams]
    for mode in modes:
        path = cn.fit_path(X, y, lams, **mode, **options)
        assert isinstance(path.network, cn.ReLUNetwork)
        assert path.weights.shape == (3,) + fits[0].weights.shape
        assert bool(jnp.all(path.converged)) and bool(jnp.all(path.violation <= 1e-8))
        for k, fit in enumerate(fits):
            # Both certified to tol = 1e-6: equal within it.
            np.testing.assert_allclose(path.objective[k], fit.objective, rtol=1e-6)


def test_interior_point_path_is_vmapped_fits():
    # The interior-point loop under vmap (one compile for every lambda) gives the
    # individual solves: same iterations, the same objectives to round-off.
    X, y = planted_relu_problem(0, n=60, d=4)
    gates = cn.sample_gates(jax.random.PRNGKey(3), X, 12)
    lams = np.array([1e-1, 3e-2, 1e-2, 3e-3])
    options = dict(gates=gates, model="relu", solver="ipm", tol=1e-8, feasibility_tol=1e-10)
    fits = [cn.fit(X, y, lam, **options) for lam in lams]
    for lanes in (None, 3):  # 3: two blocks, the second padded with two copies
        path = cn.fit_path(X, y, lams, lanes=lanes, **options)
        assert bool(jnp.all(path.converged))
        for k, fit in enumerate(fits):
            assert int(path.num_steps[k]) == int(fit.num_steps)
            np.testing.assert_allclose(path.objective[k], fit.objective, rtol=1e-12)


@pytest.mark.parametrize(
    "lams,error,match",
    [
        (np.ones((2, 2)), ValueError, "lams must be a 1-D"),
        (np.zeros(0), ValueError, "lams is empty"),
        (np.array([1e-2, -1.0]), ValueError, "lams must be >= 0"),
        (np.array([1e-2, np.nan]), ValueError, "lams contains NaN"),
        ("big", TypeError, "lams must be an array"),
        ([1e-2], TypeError, "warm_start must be a bool"),
        ([1e-2], ValueError, "lanes must be >= 1, got 0"),
        ([1e-2], TypeError, "lanes must be None or an int >= 1, got float"),
    ],
)
def test_fit_path_rejects_bad_input(gates, lams, error, match):
    X, y = _data(0)
    bad = dict(warm_start=1) if "warm" in match else {}
    if "lanes" in match:
        bad = dict(lanes=0) if "got 0" in match else dict(lanes=2.0)
    with pytest.raises(error, match=match):
        cn.fit_path(X, y, lams, gates=gates, **bad)
