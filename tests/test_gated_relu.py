"""Gated-ReLU training with FISTA: optimality against CVXPY, certificates, recovery."""

import jax
import jax.monitoring
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.preprocessing import StandardScaler

import cvxnn_jax as cn
from cvxnn_jax._programs.gated_relu import GatedReLUProgram

from reference import cvxpy_gated_relu, planted_relu_problem


def _random_problem(seed, loss):
    X, y = planted_relu_problem(seed, n=60 + 20 * seed, d=4 + seed)
    if loss == "logistic":
        y = np.where(y > np.median(y), 1.0, -1.0)
    return X, y


def _diabetes(loss):
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


def _breast_cancer(loss):
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), 2.0 * y - 1.0


PROBLEMS = [
    *[(f"random{s}-{loss}", lambda loss, s=s: _random_problem(s, loss), loss, 1e-2)
      for s in range(3) for loss in ("squared", "logistic")],
    ("diabetes-squared", _diabetes, "squared", 1e-3),
    ("breast_cancer-logistic", _breast_cancer, "logistic", 1e-3),
    ("breast_cancer-squared", _breast_cancer, "squared", 1e-2),
]


@pytest.mark.parametrize("name,make,loss,lam", PROBLEMS, ids=[p[0] for p in PROBLEMS])
def test_fit_matches_cvxpy_with_honest_certificate(name, make, loss, lam):
    X, y = make(loss)
    gates = cn.sample_gates(jax.random.PRNGKey(1), X, 16)
    tol = 1e-7
    sol = cn.fit(X, y, lam, gates=gates, loss=loss, tol=tol, max_steps=50_000)
    reference, _ = cvxpy_gated_relu(X, y, cn.gate_masks(X, gates), lam, loss)
    objective = float(sol.objective)
    assert bool(sol.converged) and sol.num_steps > 0
    np.testing.assert_allclose(objective, reference, rtol=1e-6)
    # The certificate bounds the true excess (Clarabel's own error is ~1e-9 relative,
    # hence the slack) and meets the requested tolerance.
    assert float(sol.gap) >= objective - reference - 1e-9 * reference
    assert float(sol.gap) <= tol * objective
    assert float(sol.dual_objective) <= reference * (1 + 1e-9)
    # The recovered network attains the convex objective.
    nonconvex = float(cn.nonconvex_objective(sol.network, X, y, lam, loss=loss))
    np.testing.assert_allclose(nonconvex, objective, rtol=1e-9)


def test_recovered_network_predictions_weights_and_bias():
    X, y = planted_relu_problem(5, n=80, d=3)
    lam = 3e-2
    sol = cn.fit(X, y, lam, gates=20, bias=True, key=jax.random.PRNGKey(2), tol=1e-8)
    net = sol.network
    Xb = cn.add_bias_column(X)
    program = GatedReLUProgram(X=Xb, masks=cn.gate_masks(Xb, sol.gates), y=jnp.asarray(y),
                               lam=jnp.asarray(lam), loss=cn.SquaredLoss())
    np.testing.assert_allclose(net.predict(X), program.matvec(sol.weights), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cn.nonconvex_objective(net, X, y, lam), sol.objective, rtol=1e-9)
    pruned = net.pruned()
    active = np.linalg.norm(np.asarray(sol.weights), axis=0) > 0
    assert pruned.w2.shape == (active.sum(),) and 0 < active.sum() < sol.gates.shape[1]
    np.testing.assert_allclose(pruned.predict(X), net.predict(X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(net.weight_decay(), np.linalg.norm(sol.weights, axis=0).sum(), rtol=1e-12)


def _reference_fista(program, step0, num_steps, growth=1.1, shrink=0.5):
    """Textbook FISTA with backtracking, forward tracking and gradient restart (NumPy)."""
    A = lambda W: np.asarray(program.matvec(W))
    At = lambda r: np.asarray(program.rmatvec(jnp.asarray(r)))
    f = lambda W: float(program.loss.value(jnp.asarray(A(W)), program.y))
    grad_L = lambda z: np.asarray(program.loss.grad(jnp.asarray(z), program.y))
    lam = float(program.lam)

    def prox(V, s):
        norms = np.linalg.norm(V, axis=0)
        return V * np.maximum(0.0, 1 - s * lam / np.where(norms > 0, norms, 1.0))

    x = x_prev = np.zeros(program.init_x().shape)
    t, step, iterates, restarts, backtracks = 1.0, step0, [], 0, 0
    for _ in range(num_steps):
        t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
        y = x + (t - 1) / t_next * (x - x_prev)
        g = At(grad_L(A(y)))
        s = growth * step
        while True:
            x_new = prox(y - s * g, s)
            d = x_new - y
            if f(x_new) <= f(y) + np.sum(g * d) + np.sum(d * d) / (2 * s):
                break
            s *= shrink
            backtracks += 1
        if np.any(x_new != y):
            step = s
        restart = np.sum((y - x_new) * (x_new - x)) > 0
        restarts += restart
        t = 1.0 if restart else t_next
        x_prev, x = x, x_new
        iterates.append(x)
    return iterates, restarts, backtracks


class _RecomputedPredictions(GatedReLUProgram):
    """FISTA recomputes ``A y`` each step instead of extrapolating ``A x`` (the AL
    subproblem's mode, ``CompositeProgram.forward_each_step``): the same iteration."""

    forward_each_step = True


@pytest.mark.parametrize("program_type", [GatedReLUProgram, _RecomputedPredictions])
@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_fista_steps_equal_python_reference(loss, program_type):
    X, y = _random_problem(1, loss)
    gates = cn.sample_gates(jax.random.PRNGKey(0), X, 12)
    program = program_type(X=jnp.asarray(X), masks=cn.gate_masks(X, gates), y=jnp.asarray(y),
                           lam=jnp.asarray(1e-2), loss=cn.get_loss(loss))
    solver = cn.FISTA(polish_rounds=0)  # the reference is plain FISTA
    step0 = float(solver.initial_step_size(program, program.init_x()))
    # 20 steps as asked, and on to 80 so that the line search and the restart both act.
    expected, restarts, backtracks = _reference_fista(program, step0, 80)
    assert restarts > 0 and backtracks > 0
    run = jax.jit(lambda k: cn.fista_solve(program, program.init_x(), 0.0, k, solver))
    for k in [*range(1, 21), 40, 60, 80]:
        state = run(k)
        assert int(state.num_steps) == k
        np.testing.assert_allclose(state.x, expected[k - 1], rtol=1e-9, atol=1e-12)
    assert not np.allclose(expected[19], expected[18])  # the iterates really move


def _count_compiles(fn):
    count = []
    listener = lambda name, *args, **kwargs: count.append(name) if name == "/jax/core/compile/backend_compile_duration" else None
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        fn()
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    return len(count)


def test_new_lam_does_not_recompile_and_fit_works_inside_jit():
    X, y = _random_problem(0, "squared")
    gates = cn.sample_gates(jax.random.PRNGKey(0), X, 10)
    first = cn.fit(X, y, 1e-2, gates=gates, tol=1e-8)
    assert _count_compiles(lambda: cn.fit(X, y, 3e-2, gates=gates, tol=1e-8)) == 0
    assert _count_compiles(lambda: cn.fit(X, y, 2e-3, gates=gates, tol=1e-9, max_steps=40_000)) == 0

    @jax.jit
    def user_code(X, y, lam):
        sol = cn.fit(X, y, lam, gates=gates, tol=1e-8)
        return sol.objective, sol.network.predict(X), sol.converged

    objective, predictions, converged = user_code(jnp.asarray(X), jnp.asarray(y), 1e-2)
    assert bool(converged)
    np.testing.assert_allclose(objective, first.objective, rtol=1e-10)
    np.testing.assert_allclose(predictions, first.network.predict(X), rtol=1e-8, atol=1e-10)
    assert _count_compiles(lambda: user_code(jnp.asarray(X), jnp.asarray(y), 5e-2)) == 0


def test_not_converged_says_so():
    X, y = _random_problem(2, "squared")
    with pytest.warns(cn.ConvergenceWarning, match="maximum number of steps"):
        sol = cn.fit(X, y, 1e-4, gates=30, tol=1e-12, max_steps=5)
    assert not bool(sol.converged) and sol.result == cn.RESULTS.max_steps_reached
    assert int(sol.num_steps) == 5
    with pytest.raises(Exception, match="did not converge"):
        cn.fit(X, y, 1e-4, gates=30, tol=1e-12, max_steps=5, throw=True)


def test_large_lam_gives_zero_network_with_zero_gap():
    X, y = _random_problem(0, "squared")
    sol = cn.fit(X, y, 1e3, gates=10)
    assert bool(sol.converged) and float(jnp.max(jnp.abs(sol.weights))) == 0.0
    np.testing.assert_allclose(sol.objective, 0.5 * np.mean(y**2), rtol=1e-12)
    assert float(sol.gap) <= 1e-12


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_newton_polish_certifies_what_fista_left_loose(loss):
    X, y = _random_problem(2, loss)
    gates = cn.sample_gates(jax.random.PRNGKey(1), X, 16)
    lam = 1e-2
    program = GatedReLUProgram(X=jnp.asarray(X), masks=cn.gate_masks(X, gates), y=jnp.asarray(y),
                               lam=jnp.asarray(lam), loss=cn.get_loss(loss))
    loose = cn.fista_solve(program, program.init_x(), 1e-3, 50_000, cn.FISTA(polish_rounds=0))
    W, products = program.polish(loose.x, 20, 500, 1e-10)
    reference, _ = cvxpy_gated_relu(X, y, cn.gate_masks(X, gates), lam, loss)
    objective = float(program.objective(W))
    assert objective <= float(loose.objective) and 0 < int(products) <= 20 * 501 + 1
    np.testing.assert_allclose(objective, reference, rtol=1e-8)
    # Zero columns stay zero, and at the polished point the plain rescaled residual
    # certifies what FISTA's certificate could not.
    support = np.linalg.norm(loose.x, axis=0) > 0
    assert np.all(np.asarray(W)[:, ~support] == 0) and support.sum() < support.size
    z = program.matvec(W)
    rho = -program.smooth_grad(z)
    gap, _ = program.certificate(W, z, rho, program.rmatvec(rho))
    assert float(loose.gap) > 1e-4 * float(loose.objective)
    assert float(gap) <= 1e-9 * objective

    # From a wrong support (a column that should be zero switched on) the polish still
    # never raises the objective, and keeps the other zero columns at zero.
    off = int(np.flatnonzero(~support)[0])
    wrong = loose.x.at[:, off].set(1e-3)
    W2, _ = program.polish(wrong, 5, 100, 1e-10)
    assert float(program.objective(W2)) <= float(program.objective(wrong))
    others = ~support
    others[off] = False
    assert np.all(np.asarray(W2)[:, others] == 0)


def test_polish_fits_a_small_step_budget():
    # A full polish round may take polish_newton * (polish_cg + 1) + 1 = 3209 product
    # pairs; with fewer steps left its CG is capped, not the polish skipped. Measured on
    # this problem: plain FISTA needs 4180 steps to 1e-9 (2.3e-5 after 2000); with the
    # polish it certifies within a budget of 2000.
    X, y = planted_relu_problem(3, n=300, d=10)
    gates = cn.sample_gates(jax.random.PRNGKey(3), X, 60)

    def solve(solver):
        return cn.fit(X, y, 1e-3, gates=gates, tol=1e-9, max_steps=2000, solver=solver)

    with pytest.warns(cn.ConvergenceWarning):
        plain = solve(cn.FISTA(polish_rounds=0))
    polished = solve(cn.FISTA())
    assert not bool(plain.converged) and int(plain.num_steps) == 2000
    assert bool(polished.converged) and int(polished.num_steps) <= 2000
    assert float(polished.gap) <= 1e-9 * float(polished.objective)
