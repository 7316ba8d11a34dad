"""The cone-constrained ReLU program: AL, ADMM and projected FISTA against CVXPY, closed form, recovery,
cone decomposition and exact patterns."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.datasets import load_diabetes
from sklearn.preprocessing import StandardScaler

import cvxnn_jax as cn

from reference import cvxpy_relu, planted_relu_problem


def _program(X, gates, y, lam, loss="squared", slope=0.0):
    X = jnp.asarray(X)
    return cn.ReLUProgram(X=X, masks=cn.gate_masks(X, gates), y=jnp.asarray(y),
                          lam=jnp.asarray(lam), loss=cn.get_loss(loss), slope=slope)


def _random(seed, n=60, d=4, loss="squared"):
    X, y = planted_relu_problem(seed, n=n, d=d)
    if loss == "logistic":
        y = np.where(y > np.median(y), 1.0, -1.0)
    return X, y


def _diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X)[:200], ((y - y.mean()) / y.std())[:200]


CASES = [
    # (name, data, loss, lam, solver, activation)
    ("random-squared-al", lambda: _random(0), "squared", 1e-2, "al", "relu"),
    ("random-squared-admm", lambda: _random(0), "squared", 1e-2, "admm", "relu"),
    ("random-logistic-al", lambda: _random(1, loss="logistic"), "logistic", 1e-2, "al", "relu"),
    ("random-logistic-admm", lambda: _random(1, loss="logistic"), "logistic", 1e-2, "admm", "relu"),
    # n = 40 < d P = 48: ADMM's W-step through the Woodbury identity (n x n); above, the
    # p block (d P x d P).
    ("random-squared-admm-samples", lambda: _random(0, n=40), "squared", 1e-2, "admm", "relu"),
    ("diabetes-squared-al", _diabetes, "squared", 1e-2, "al", "relu"),
    ("random-leaky-al", lambda: _random(2), "squared", 1e-2, "al", "leaky_relu"),
    ("random-absolute-al", lambda: _random(3), "squared", 1e-2, "al", "absolute"),
    # FISTA with the exact cone projection as its prox (ProjectedReLUProgram).
    ("random-squared-fista", lambda: _random(0), "squared", 1e-2, "fista", "relu"),
    ("random-logistic-fista", lambda: _random(1, loss="logistic"), "logistic", 1e-2, "fista",
     "relu"),
    ("diabetes-squared-fista", _diabetes, "squared", 1e-2, "fista", "relu"),
    ("random-absolute-fista", lambda: _random(3), "squared", 1e-2, "fista", "absolute"),
    # The primal-dual interior-point method (Woodbury-factored Newton steps).
    ("random-squared-ipm", lambda: _random(0), "squared", 1e-2, "ipm", "relu"),
    ("random-logistic-ipm", lambda: _random(1, loss="logistic"), "logistic", 1e-2, "ipm", "relu"),
    ("diabetes-squared-ipm", _diabetes, "squared", 1e-2, "ipm", "relu"),
    ("random-leaky-ipm", lambda: _random(2), "squared", 1e-2, "ipm", "leaky_relu"),
    ("random-absolute-ipm", lambda: _random(3), "squared", 1e-2, "ipm", "absolute"),
    # The cases above have n > P d, so "auto" factors the P d x P d Gram matrix; these
    # factor the n x n one.
    ("random-squared-ipm-samples", lambda: _random(0), "squared", 1e-2,
     cn.InteriorPoint(factor_side="samples"), "relu"),
    ("random-logistic-ipm-samples", lambda: _random(1, loss="logistic"), "logistic", 1e-2,
     cn.InteriorPoint(factor_side="samples"), "relu"),
    # Mehrotra's predictor-corrector alone, without Gondzio's centrality correctors.
    ("random-squared-ipm-no-correctors", lambda: _random(0), "squared", 1e-2,
     cn.InteriorPoint(centrality_correctors=0), "relu"),
]
SLOPES = {"relu": 0.0, "leaky_relu": 0.01, "absolute": -1.0}


@pytest.mark.parametrize("name,make,loss,lam,solver,activation", CASES, ids=[c[0] for c in CASES])
def test_relu_solvers_match_cvxpy(name, make, loss, lam, solver, activation):
    X, y = make()
    gates = cn.sample_gates(jax.random.PRNGKey(3), X, 12)
    tol = 1e-6
    sol = cn.fit(X, y, lam, gates=gates, model="relu", loss=loss, solver=solver, tol=tol,
                 feasibility_tol=1e-8, activation=activation, max_steps=200_000)
    slope = SLOPES[activation]
    reference, _, _ = cvxpy_relu(X, y, cn.gate_masks(X, gates), lam, loss, slope=slope)
    objective = float(sol.objective)
    assert bool(sol.converged)
    assert float(sol.violation) <= 1e-8
    np.testing.assert_allclose(objective, reference, rtol=1e-6 if loss == "squared" else 1e-5)
    # The gap bounds the excess of the recovered network over the optimum of the
    # program (Clarabel's own error is ~1e-8 relative, hence the slack).
    assert float(sol.gap) >= objective - reference - 1e-8 * reference
    assert float(sol.gap) <= tol * objective
    assert float(sol.dual_objective) <= reference * (1 + 1e-8)
    # The convex objective at the weights equals the recovered network's objective, and
    # the network's predictions equal the convex model's.
    program = _program(X, gates, y, lam, loss, slope)
    # (Equal up to the cone violation: 1e-8 of it moves the objective by ~1e-9.)
    np.testing.assert_allclose(float(program.objective(sol.weights)), objective, rtol=1e-8)
    # Each column's violation moves a prediction by at most violation * max_k ||x_k||.
    atol = sol.weights.shape[1] * float(sol.violation) * float(program.row_norm()) + 1e-12
    np.testing.assert_allclose(sol.network.predict(X), program.predict(sol.weights),
                               rtol=0, atol=atol)
    np.testing.assert_allclose(cn.nonconvex_objective(sol.network, X, y, lam, loss=loss),
                               objective, rtol=1e-12)


@pytest.mark.parametrize("solver", [None, "ipm"])
def test_whitened_closed_form(solver):
    # n <= d with orthonormal rows (X X^T = I); a gate X^T (2D - 1) realises every
    # pattern D strictly, so all 2^n patterns are present (DESIGN.md section 4, item 1).
    n, d = 4, 7
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((d, n)))
    X = Q.T
    y = np.array([1.5, -0.7, 0.9, -2.0])
    patterns = np.array([[(k >> i) & 1 for i in range(n)] for k in range(1, 2**n)]).T
    gates = X.T @ (2.0 * patterns - 1.0)
    lam = 0.1
    beta = n * lam
    expected = 0.0
    for part in (np.maximum(y, 0), np.maximum(-y, 0)):
        norm = np.linalg.norm(part)
        expected += 0.5 * min(norm, beta) ** 2 + beta * max(norm - beta, 0.0)
    expected /= n
    sol = cn.fit(X, y, lam, gates=gates, model="relu", solver=solver, tol=1e-10,
                 feasibility_tol=1e-12, max_steps=None if solver == "ipm" else 200_000)
    assert bool(sol.converged)
    np.testing.assert_allclose(float(sol.objective), expected, rtol=1e-8)


def test_default_relu_solver():
    """solver=None: the interior point in float64 where its Newton systems fit; else ADMM
    up to n = 500 samples (where it certified first) and the augmented Lagrangian above."""
    assert isinstance(cn.default_relu_solver(500, 21, 200, jnp.float64), cn.InteriorPoint)
    assert isinstance(cn.default_relu_solver(500, 21, 200, jnp.float32), cn.ADMM)
    assert isinstance(cn.default_relu_solver(501, 21, 200, jnp.float32), cn.AugmentedLagrangian)
    # n = 20 000, d = 51, 1000 patterns: the (n, Pd) Woodbury factor alone takes 8 GB.
    assert isinstance(cn.default_relu_solver(20_000, 51, 1000, jnp.float64),
                      cn.AugmentedLagrangian)
    # n = 500, d = 101, 3000 patterns: 3.0e8 entries, over the CPU's 2^28.
    assert isinstance(cn.default_relu_solver(500, 101, 3000, jnp.float64), cn.ADMM)


def test_default_relu_solver_budget_follows_accelerator_memory(monkeypatch):
    """On a device that reports its memory the interior point may use a quarter of it;
    on the CPU (no report) the budget stays 2^28 entries."""
    import cvxnn_jax._fit as fit_module

    # n = 100 000, d = 20, 200 patterns: 8.3e8 entries, 6.7 GB in float64.
    size = (100_000, 20, 200)
    assert fit_module.ipm_memory_entries(*size) * 8 > 2**31
    monkeypatch.setattr(fit_module, "device_memory_bytes", lambda: None)
    assert isinstance(cn.default_relu_solver(*size, jnp.float64), cn.AugmentedLagrangian)
    monkeypatch.setattr(fit_module, "device_memory_bytes", lambda: 80 * 2**30)
    assert fit_module.ipm_max_entries(jnp.float64) == 80 * 2**30 // 4 // 8
    assert isinstance(cn.default_relu_solver(*size, jnp.float64), cn.InteriorPoint)
    assert isinstance(cn.default_relu_solver(*size, jnp.float32), cn.AugmentedLagrangian)
    # A small device never shrinks the CPU's budget.
    monkeypatch.setattr(fit_module, "device_memory_bytes", lambda: 2**30)
    assert fit_module.ipm_max_entries(jnp.float64) == 2**28
    assert isinstance(cn.default_relu_solver(500, 21, 200, jnp.float64), cn.InteriorPoint)


def test_centrality_correctors_save_interior_point_iterations():
    # A planted problem off the benchmark's seed (n = 300, d = 20, 100 patterns): 37
    # iterations without Gondzio's correctors and 30 with the default two, measured with
    # jax 0.10.1 on the CPU; the correctors only change the path, not the optimum.
    X, y = planted_relu_problem(1, n=300, d=20)
    gates = cn.sample_gates(jax.random.PRNGKey(1), X, 100)
    solutions = [cn.fit(X, y, 1e-3, gates=gates, model="relu", tol=1e-6, feasibility_tol=1e-8,
                        solver=cn.InteriorPoint(centrality_correctors=k)) for k in (0, 2)]
    assert all(bool(sol.converged) for sol in solutions)
    assert int(solutions[1].num_steps) <= int(solutions[0].num_steps) - 4
    np.testing.assert_allclose(float(solutions[1].objective), float(solutions[0].objective),
                               rtol=2e-6)
    with pytest.raises(ValueError, match="centrality_correctors"):
        cn.InteriorPoint(centrality_correctors=-1)


def test_interior_point_stops_when_stalled_and_polishes_on_the_faces(monkeypatch):
    # Planted problem (n = 400, d = 20, 50 patterns) at tol 1e-9, measured with jax 0.10.1
    # on the CPU: the barrier parameter falls far below the certificate after 25
    # iterations while the multiplier certificate stays at 6.0e-9; Newton on the faces
    # certifies the point at 1.3e-11 (its second step lowers the objective by less than
    # its round-off: newton_polish takes it because it shrinks the gradient). Without
    # the polish the solve stops as stalled, not after max_steps; at tol 1e-13, below
    # the polished point's 3.9e-13, neither certifies and the solve says so.
    import cvxnn_jax._solvers.ipm as ipm

    X, y = planted_relu_problem(1, n=400, d=20)
    gates = cn.sample_gates(jax.random.PRNGKey(1), X, 50)

    def solve(tol):
        return cn.fit(X, y, 1e-3, gates=gates, model="relu", tol=tol, feasibility_tol=1e-8,
                      solver=cn.InteriorPoint(), max_steps=200)

    polished = solve(1e-9)
    assert bool(polished.converged) and int(polished.num_steps) <= 30
    assert float(polished.gap) <= 1e-9 * float(polished.objective)
    assert float(polished.violation) <= 1e-8
    reference, _, _ = cvxpy_relu(X, y, cn.gate_masks(X, gates), 1e-3)
    np.testing.assert_allclose(float(polished.objective), reference, rtol=1e-7)

    with pytest.warns(cn.ConvergenceWarning, match="barrier parameter fell far below"):
        too_tight = solve(1e-13)
    assert too_tight.result == cn.RESULTS.stalled and int(too_tight.num_steps) <= 40

    jax.clear_caches()  # the traced solve calls the polish; retrace without it
    try:
        with monkeypatch.context() as patch:
            patch.setattr(ipm, "_polish_if_uncertified", lambda program, state, *args: state)
            with pytest.warns(cn.ConvergenceWarning):
                unpolished = solve(1e-9)
    finally:
        jax.clear_caches()  # no later test may reuse the trace without the polish
    assert unpolished.result == cn.RESULTS.stalled and int(unpolished.num_steps) <= 30
    assert float(unpolished.gap) > 1e-9 * float(unpolished.objective)


def test_al_and_admm_certify_by_newton_on_the_faces():
    # n = 100, d = 5, 20 patterns at tol 1e-8, measured with jax 0.10.1 on the CPU: the
    # multipliers' certificates lag the iterates (AL: relative gap 8.3e-6 after 40 000
    # steps, its objective 3e-9 from the optimum; ADMM: 1.4e-6 after 20 000 iterations).
    # Newton on the faces named by the positive multipliers certifies AL after 29 331
    # steps (5e-13) and ADMM after 8 260 iterations (5.3e-11; 7 260 with a polish every
    # 500 iterations, before its interval doubled after each failure). (With ADMM's
    # cone_weight at 1, its default until 2026-11-27: 7.6e-4 without, 15 380 with.)
    X, y = planted_relu_problem(0, n=100, d=5)
    gates = cn.sample_gates(jax.random.PRNGKey(0), X, 20)
    reference, _, _ = cvxpy_relu(X, y, cn.gate_masks(X, gates), 1e-3)
    for polished, unpolished, budget in (
            (cn.AugmentedLagrangian(), cn.AugmentedLagrangian(polish_newton=0), 40_000),
            (cn.ADMM(), cn.ADMM(polish_newton=0), 20_000)):
        options = dict(gates=gates, model="relu", tol=1e-8, feasibility_tol=1e-6,
                       max_steps=budget)
        solution = cn.fit(X, y, 1e-3, solver=polished, **options)
        assert bool(solution.converged), type(polished).__name__
        assert float(solution.gap) <= 1e-8 * float(solution.objective)
        assert float(solution.violation) <= 1e-6
        np.testing.assert_allclose(float(solution.objective), reference, rtol=1e-7)
        with pytest.warns(cn.ConvergenceWarning):
            plain = cn.fit(X, y, 1e-3, solver=unpolished, **options)
        assert float(plain.gap) > 1e-8 * float(plain.objective)


def test_al_relaxation_steps_count_against_max_steps():
    # AL's Lagrangian-relaxation bounds run FISTA; their steps are part of the budget
    # (until 2026-11-28 they were added on top: 180 000 steps reported for a cap of
    # 100 000 at n = 500). Here (n = 100, d = 5, 20 patterns, no face polish) about 6 000
    # of the 40 000 steps go to relaxation bounds.
    from cvxnn_jax._solvers.al import al_solve

    X, y = planted_relu_problem(0, n=100, d=5)
    gates = cn.sample_gates(jax.random.PRNGKey(0), X, 20)
    program = _program(X, gates, y, 1e-3)
    solver = cn.AugmentedLagrangian(polish_newton=0)
    state = al_solve(program, program.init_x(), 1e-6, 1e-6, 40_000, solver)
    assert int(state.num_relaxation_steps) > 0
    assert int(state.inner.num_steps) <= 40_000
    with pytest.warns(cn.ConvergenceWarning):
        solution = cn.fit(X, y, 1e-3, gates=gates, model="relu", solver=solver, tol=1e-6,
                          feasibility_tol=1e-6, max_steps=40_000)
    assert int(solution.num_steps) == int(state.inner.num_steps)


@pytest.mark.parametrize("n,d,num_gates,expected", [
    (40, 4, 20, "samples"),   # n < d P: the Woodbury n x n matrix
    (120, 3, 10, "p"),        # d P <= n: the p block itself
    (40, 4, 20, "nystrom"),   # neither side within max_direct_size
])
def test_admm_w_step_solves_its_system(n, d, num_gates, expected):
    # The W-step's solve against the dense system it stands for (the p block of
    # _dense_p_block, the q block I + X^T X), with non-default weights.
    from cvxnn_jax._solvers import admm

    X, y = planted_relu_problem(5, n=n, d=d)
    gates = cn.sample_gates(jax.random.PRNGKey(2), X, num_gates)
    program = _program(X, gates, y, 1e-2, slope=0.1)
    P = program.num_patterns
    solver = cn.ADMM(cone_weight=0.7, prediction_weight=1.3,
                     max_direct_size=10 if expected == "nystrom" else 4096, cg_max_steps=500)
    factors = admm._factorise(program, solver)
    sides = {"p": factors.p_inverse.shape[0], "samples": factors.samples_inverse.shape[0],
             "nystrom": factors.nystrom_vectors.shape[0]}
    assert [side for side, size in sides.items() if size > 0] == [expected]
    rhs = jax.random.normal(jax.random.PRNGKey(3), (d, 2 * P), jnp.float64)
    W = admm._solve_W(program, factors, rhs, jnp.zeros_like(rhs), solver)
    p_matrix = admm._dense_p_block(program, 0.7, 1.3)
    q_matrix = jnp.eye(d) + 0.7 * program.X.T @ program.X
    to_p = lambda M: (M[:, :P] - M[:, P:]).reshape(-1) * 0.5**0.5  # (d, P) row-major, as _solve_p
    to_q = lambda M: (M[:, :P] + M[:, P:]) * 0.5**0.5
    np.testing.assert_allclose(p_matrix @ to_p(W), to_p(rhs), rtol=0, atol=1e-9)
    np.testing.assert_allclose(q_matrix @ to_q(W), to_q(rhs), rtol=0, atol=1e-9)


def test_admm_w_step_refinement_in_float32():
    # On scikit-learn's wine data with 100 patterns the W-step's system has a condition
    # number near 1.6e4. Solved in float32 through its inverse, the relative residual was
    # 9e-4 and ADMM stalled (a relative gap of 0.17 after 100 000 iterations, logistic
    # loss); one step of refinement against _W_system, the default below float64, takes
    # the residual down to float32's level. Residuals are measured in float64.
    from sklearn.datasets import load_wine

    from cvxnn_jax._solvers import admm

    X, labels = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = np.where(labels == 0, 1.0, -1.0)
    gates = cn.sample_gates(jax.random.PRNGKey(0), X, 100)
    solver = cn.ADMM()
    program = _program(X, gates, y, 1e-3)
    program32 = _program(X.astype(np.float32), np.asarray(gates, np.float32),
                         y.astype(np.float32), np.float32(1e-3))
    W_true = jax.random.normal(jax.random.PRNGKey(1), (X.shape[1], 2 * program.num_patterns))

    def system(W):
        W = jnp.asarray(W, jnp.float64)
        return admm._W_system(program, W, program.X @ W, solver)

    rhs = system(W_true)
    # _W_system is the system that _solve_W solves (checked against dense matrices above).
    W, XW = admm._refined_solve_W(program, admm._factorise(program, solver), rhs,
                                  jnp.zeros_like(rhs), solver, 0)
    np.testing.assert_allclose(system(W), rhs, rtol=0, atol=1e-10 * jnp.max(jnp.abs(rhs)))
    np.testing.assert_allclose(XW, program.X @ W, rtol=1e-12)
    factors32 = admm._factorise(program32, solver)
    residuals = []
    for steps in (0, 1):
        W32, XW32 = admm._refined_solve_W(program32, factors32, rhs.astype(jnp.float32),
                                          jnp.zeros(rhs.shape, jnp.float32), solver, steps)
        residuals.append(float(jnp.linalg.norm(system(W32) - rhs) / jnp.linalg.norm(rhs)))
    assert residuals[0] > 1e-4 and residuals[1] < 3e-6, residuals


def test_recovered_network_is_pruned_and_feasible():
    X, y = _random(4, n=50, d=3)
    sol = cn.fit(X, y, 3e-2, gates=10, model="relu", bias=True, tol=1e-7, feasibility_tol=1e-9,
                 key=jax.random.PRNGKey(1))
    # The default solver here is the interior point: the same iterates as asking for it.
    ipm = cn.fit(X, y, 3e-2, gates=10, model="relu", bias=True, tol=1e-7, feasibility_tol=1e-9,
                 key=jax.random.PRNGKey(1), solver="ipm")
    assert bool(sol.converged) and int(sol.num_steps) == int(ipm.num_steps) < 100
    np.testing.assert_array_equal(sol.weights, ipm.weights)
    net = sol.network
    assert isinstance(net, cn.ReLUNetwork) and net.W1.shape[1] == 2 * sol.gates.shape[1]
    pruned = net.pruned()
    assert 0 < pruned.w2.shape[0] < net.w2.shape[0]
    np.testing.assert_allclose(pruned.predict(X), net.predict(X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(net(X[0]), net.predict(X)[0], rtol=1e-12)


def test_cone_decomposition_is_feasible_with_identical_predictions():
    X, y = _random(5, n=70, d=4)
    gates = cn.sample_gates(jax.random.PRNGKey(0), X, 20)
    gated = cn.fit(X, y, 1e-2, gates=gates, tol=1e-8)
    W = cn.cone_decomposition(X, gates, gated.weights)
    program = _program(X, gates, y, 1e-2)
    assert float(program.violation(W)) <= 1e-12
    gated_predictions = gated.network.predict(X)
    np.testing.assert_allclose(program.predict(W), gated_predictions, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(cn.relu_network(W, 0.0, False).predict(X), gated_predictions,
                               rtol=1e-8, atol=1e-10)


def _adam_objective(X, y, lam, width, seed, steps=3000, learning_rate=1e-2):
    """Full-batch Adam on the non-convex network (bias column included) from a random start."""
    Xb = cn.add_bias_column(X)
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    params = (jax.random.normal(k1, (Xb.shape[1], width)) / np.sqrt(Xb.shape[1]),
              jax.random.normal(k2, (width,)) / np.sqrt(width))

    def objective(params):
        W1, w2 = params
        predictions = jnp.maximum(Xb @ W1, 0.0) @ w2
        return 0.5 * jnp.mean((predictions - y) ** 2) + 0.5 * lam * (
            jnp.sum(W1**2) + jnp.sum(w2**2))

    optimizer = optax.adam(learning_rate)

    @jax.jit
    def run(params):
        def step(carry, _):
            params, state = carry
            value, grads = jax.value_and_grad(objective)(params)
            updates, state = optimizer.update(grads, state)
            return (optax.apply_updates(params, updates), state), value

        (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), None, steps)
        return objective(params)

    return float(run(params))


@pytest.mark.parametrize("dimension,solver",
                         [(1, "admm"), (2, "admm"), (2, "fista"), (1, "ipm"), (2, "ipm")])
def test_exact_patterns_reach_the_global_optimum(dimension, solver):
    rng = np.random.default_rng(dimension)
    n = 12
    X = rng.uniform(-1, 1, (n, dimension))
    y = np.sin(3 * X[:, 0]) + (X[:, 1] ** 2 if dimension == 2 else 0.0)
    lam = 1e-2
    sol = cn.fit(X, y, lam, gates="exact", bias=True, model="relu", solver=solver, tol=1e-6,
                 feasibility_tol=1e-8, max_steps=100_000)
    assert bool(sol.converged)
    objective = float(sol.objective)
    np.testing.assert_allclose(float(cn.nonconvex_objective(sol.network, X, y, lam)), objective,
                               rtol=1e-9)
    width = int(sol.network.pruned().w2.shape[0])
    best_adam = min(_adam_objective(jnp.asarray(X), jnp.asarray(y), lam, width, seed)
                    for seed in range(20))
    # The global optimum (to the certified gap) is no worse than any Adam run.
    assert objective - float(sol.gap) <= best_adam * (1 + 1e-9)
    assert objective <= best_adam * (1 + 1e-6)


def test_enumerate_gates_2d_finds_every_pattern():
    # Brute force: many random affine gates never produce a pattern the enumeration lacks.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((9, 2))
    gates = cn.enumerate_gates_2d(X)
    Xb = cn.add_bias_column(X)
    enumerated = {tuple(col) for col in np.asarray(cn.gate_masks(Xb, gates)).T.astype(int)}
    random_gates = rng.standard_normal((3, 20000)) * np.array([[1.0], [1.0], [3.0]])
    sampled = {tuple(col) for col in np.asarray(cn.gate_masks(Xb, random_gates)).T.astype(int)}
    sampled.discard((0,) * 9)
    assert sampled <= enumerated
    assert len(enumerated) == gates.shape[1]
    # No data point lies on an enumerated gate's hyperplane.
    assert np.min(np.abs(np.asarray(Xb @ gates))) > 1e-9


def test_relu_validation_names_the_argument():
    X, y = _random(0, n=20, d=3)
    with pytest.raises(ValueError, match="activation"):
        cn.fit(X, y, model="relu", activation="tanh")
    with pytest.raises(ValueError, match="needs model='relu'"):
        cn.fit(X, y, activation="absolute")
    with pytest.raises(ValueError, match="bias=True"):
        cn.fit(X, y, gates="exact", model="relu")
    with pytest.raises(ValueError, match="1 or 2 features"):
        cn.fit(X, y, gates="exact", bias=True, model="relu")
    with pytest.raises(ValueError, match="solver"):
        cn.fit(X, y, model="relu", solver="newton")
    with pytest.raises(ValueError, match="leaky_slope"):
        cn.fit(X, y, model="relu", activation="leaky_relu", leaky_slope=2.0)


def test_face_polish_stays_feasible_and_reaches_the_optimum_from_late_fista_iterates():
    """Newton on the cones' faces (ProjectedReLUProgram.polish): from any FISTA iterate
    the result is feasible and no worse; from one whose faces are settled it lands on the
    CVXPY/Clarabel optimum; and FISTA with it certifies the same optimum."""
    X, y = planted_relu_problem(0, n=100, d=5)
    X, y = jnp.asarray(X), jnp.asarray(y)
    gates = cn.sample_gates(jax.random.PRNGKey(0), X, 20)
    lam = 1e-3
    relu = cn.ReLUProgram(X=X, masks=cn.gate_masks(X, gates), y=y, lam=jnp.asarray(lam),
                          loss=cn.get_loss("squared"))
    projected = cn.ProjectedReLUProgram.build(relu)
    optimum, _, _ = cvxpy_relu(np.asarray(X), np.asarray(y), np.asarray(relu.masks), lam)
    run = jax.jit(cn.fista_solve, static_argnums=4)
    excess = {}
    for steps in (100, 1000, 2000):
        state = run(projected, projected.init_x(), jnp.asarray(0.0), jnp.asarray(steps),
                    cn.FISTA(polish_rounds=0))
        polished, products = projected.polish(state.x, 8, 1000, jnp.asarray(1e-10))
        assert float(relu.violation(polished)) <= 1e-12
        assert float(projected.objective(polished)) <= float(projected.objective(state.x))
        assert int(products) > 0
        excess[steps] = (float(projected.objective(state.x)) - optimum,
                         float(projected.objective(polished)) - optimum)
    before, after = excess[2000]
    # FISTA alone is 3.7e-8 (relative) above the optimum after 2000 steps; the polish
    # lands within CVXPY's own accuracy of it (it ends 3.7e-9 below Clarabel's value).
    assert before > 1e-8 * optimum
    assert abs(after) <= 1e-8 * optimum
    solution = cn.fit(X, y, lam, gates=gates, model="relu", solver=cn.FISTA(), tol=1e-8,
                      max_steps=20_000)
    assert bool(solution.converged)
    np.testing.assert_allclose(float(solution.objective), optimum, rtol=1e-7)


def test_al_lower_bound_is_below_the_optimum_with_dual_extrapolation():
    # AL's Lagrangian-relaxation bound comes from FISTA, whose dual extrapolation passes
    # an affine combination of past dual directions. Until 2026-11-29 the relaxation's
    # certificate took rho from the current predictions but the scaling from the
    # extrapolated direction: here its "lower bound" was 2.0e-7 above the optimum
    # (relative 6.8e-6) and the solve reported converged. Exact patterns, 1-D data.
    rng = np.random.default_rng(7)
    x = rng.standard_normal((25, 1))
    y = np.abs(x[:, 0]) + 0.3 * np.sin(3 * x[:, 0]) + 0.05 * rng.standard_normal(25)
    lam = 1e-2
    optimum = cn.fit(x, y, lam, gates="exact", bias=True, model="relu", solver="ipm",
                     tol=1e-10)
    assert bool(optimum.converged)
    best = float(cn.nonconvex_objective(optimum.network, x, y, lam))
    sol = cn.fit(x, y, lam, gates="exact", bias=True, model="relu", solver="al")
    assert bool(sol.converged)
    assert float(sol.dual_objective) <= best * (1 + 1e-12)
    assert float(sol.objective) - best <= 1e-6 * best


@pytest.mark.parametrize("shape,duplicate", [((20, 50), False), ((60, 6), True)],
                         ids=["more_features_than_samples", "duplicated_feature"])
def test_interior_point_on_data_of_deficient_rank(shape, duplicate):
    # Until 2026-11-29 the interior point started along the raw gates, whose components
    # in X's null space no prediction or cone holds: on these problems its iterates ran
    # off (objectives of 1e11 to 1e13, uncertified). It now starts in X's row space.
    n, d = shape
    rng = np.random.default_rng(n + d)
    X, y = rng.standard_normal((n, d)), rng.standard_normal(n)
    if duplicate:
        X[:, -1] = X[:, 0]
    gates = cn.sample_gates(jax.random.PRNGKey(0), X, 20)
    solution = cn.fit(X, y, 1e-2, gates=gates, model="relu", tol=1e-6)
    assert bool(solution.converged)
    reference, _, _ = cvxpy_relu(X, y, cn.gate_masks(X, gates), 1e-2)
    np.testing.assert_allclose(float(solution.objective), reference, rtol=1e-6)
    assert float(solution.objective) - float(solution.gap) <= reference * (1 + 1e-9)


def test_interior_point_never_reports_a_point_worse_than_zero():
    # On a few samples (n <= 5, d = 3) the interior point can end uncertified; it then
    # says so and reports no point worse than W = 0, which lies in every cone (it once
    # reported objectives up to 1e29 at n = 2).
    certified = 0
    for n in (1, 2, 3, 5):
        for seed in range(3):
            rng = np.random.default_rng(100 + seed)
            X, y = rng.standard_normal((n, 3)), rng.standard_normal(n)
            gates = cn.sample_gates(jax.random.PRNGKey(0), X, 8)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", cn.ConvergenceWarning)
                solution = cn.fit(X, y, 1e-2, gates=gates, model="relu", solver="ipm")
            zero = 0.5 * float(np.mean(y**2))
            assert float(solution.objective) <= zero * (1 + 1e-12)
            if bool(solution.converged):
                certified += 1
                reference, _, _ = cvxpy_relu(X, y, cn.gate_masks(X, gates), 1e-2)
                np.testing.assert_allclose(float(solution.objective), reference, rtol=1e-6,
                                           atol=1e-12)
            else:
                assert solution.result in (cn.RESULTS.stalled, cn.RESULTS.max_steps_reached)
    assert certified >= 8
