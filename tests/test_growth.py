"""The dual-violation oracle, pattern growth and ``certify`` (issue 7)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cvxnn_jax as cn
from reference import cvxpy_gated_relu, cvxpy_relu


def _sphere(d, count, seed):
    U = np.random.default_rng(seed).standard_normal((d, count))
    return U / np.linalg.norm(U, axis=0)


@pytest.mark.parametrize("features", [1, 2])
@pytest.mark.parametrize("slope", [0.0, 0.2, -1.0])
def test_exact_oracle_is_the_maximum(features, slope):
    rng = np.random.default_rng(features)
    X = cn.add_bias_column(rng.standard_normal((15, features)))
    rho = jnp.asarray(rng.standard_normal(15))
    value, unit = cn.exact_violation(X, rho, slope)
    # The unit is a unit vector attaining the reported value.
    np.testing.assert_allclose(float(jnp.linalg.norm(unit)), 1.0, rtol=1e-12)
    attained = rho @ jnp.maximum(X @ unit, slope * (X @ unit))
    np.testing.assert_allclose(float(attained), float(value), rtol=1e-12)
    # No direction among 10^6 does better, and the best of them comes close.
    U = _sphere(features + 1, 1_000_000, 0)
    T = np.asarray(X) @ U
    dense = np.abs(np.asarray(rho) @ np.maximum(T, slope * T)).max()
    assert dense <= abs(float(value)) * (1 + 1e-12)
    assert dense >= abs(float(value)) * (1 - 1e-3)
    # The heuristic search's best is a lower bound, and close on these easy problems.
    found = cn.search_violations(X, rho, slope)
    assert abs(float(found.values[0])) <= abs(float(value)) * (1 + 1e-12)
    assert abs(float(found.values[0])) >= abs(float(value)) * (1 - 1e-3)


def test_exact_gated_oracle_is_the_maximum_over_patterns():
    rng = np.random.default_rng(3)
    X = cn.add_bias_column(rng.standard_normal((15, 2)))
    rho = jnp.asarray(rng.standard_normal(15))
    value, gate = cn.exact_gated_violation(X, rho)
    gates = _sphere(3, 200_000, 1)
    masks = np.asarray(X) @ gates >= 0
    dense = np.linalg.norm(np.asarray(X).T @ (masks * np.asarray(rho)[:, None]), axis=0).max()
    np.testing.assert_allclose(dense, float(value), rtol=1e-12)  # every pattern is hit
    mask = np.asarray(X) @ np.asarray(gate) >= 0
    np.testing.assert_allclose(np.linalg.norm(np.asarray(X).T @ (mask * np.asarray(rho))),
                               float(value), rtol=1e-12)


def _two_d_problem(seed=2, n=12):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 2))
    y = np.sin(3 * X[:, 0]) + X[:, 1] ** 2
    return X, y


def test_gated_growth_reaches_the_exact_enumeration_optimum():
    X, y = _two_d_problem(n=20)
    lam = 1e-2
    Xb = cn.add_bias_column(X)
    everything = cn.enumerate_gates_2d(X)
    optimum, _ = cvxpy_gated_relu(Xb, y, cn.gate_masks(Xb, everything), lam)
    sol = cn.fit(X, y, lam, gates=cn.Grow(initial_gates=8, tol=1e-6), bias=True, tol=1e-10,
                 max_steps=100_000, key=jax.random.PRNGKey(1))
    info = sol.growth
    assert info.exact and info.stopped == "no violation" and bool(sol.converged)
    assert info.history_num_patterns[0] <= 8
    np.testing.assert_allclose(float(sol.objective), optimum, rtol=1e-6)
    # The exact oracle's lower bound holds over every pattern, and is tight here.
    assert float(info.lower_bound) <= optimum * (1 + 1e-9)
    np.testing.assert_allclose(float(info.lower_bound), optimum, rtol=1e-6)
    # Far fewer patterns than the enumeration.
    assert sol.gates.shape[1] < everything.shape[1] / 4


@pytest.mark.parametrize("solver", ["admm", "ipm"])
def test_relu_growth_reaches_the_exact_enumeration_optimum(solver):
    X, y = _two_d_problem()
    lam = 1e-2
    Xb = cn.add_bias_column(X)
    optimum = cvxpy_relu(Xb, y, cn.gate_masks(Xb, cn.enumerate_gates_2d(X)), lam)[0]
    # The oracle's value moves with the dual point like the square root of the gap: at a
    # relative gap of 1e-8 the interior point's rho left a violation of 2e-4 on a pattern
    # already in the program ("no new pattern"); at 1e-10, 1e-7.
    tol = {"admm": 1e-7, "ipm": 1e-10}[solver]
    # Grow's default drop_after: one round at zero with the interior point (it zeroes a
    # column only when the certificate allows), two with ADMM.
    spec = cn.Grow(initial_gates=8, tol=1e-4)
    sol = cn.fit(X, y, lam, gates=spec, model="relu",
                 solver=solver, bias=True, tol=tol, feasibility_tol=1e-9, max_steps=100_000)
    assert sol.growth.exact and sol.growth.stopped == "no violation"
    assert bool(sol.converged)
    np.testing.assert_allclose(float(sol.objective), optimum, rtol=1e-6)
    np.testing.assert_allclose(float(cn.nonconvex_objective(sol.network, X, y, lam)),
                               float(sol.objective), rtol=1e-9)
    assert float(sol.growth.lower_bound) <= optimum * (1 + 1e-9)


def test_padding_of_the_pattern_count():
    # Few compilations (at most 4 sizes per doubling above 128) and little padding (each
    # padded pattern costs what a real one does, most of all in the interior-point solve).
    from cvxnn_jax._growth import _bucket

    sizes = [_bucket(P) for P in range(1, 5000)]
    for P, size in enumerate(sizes, start=1):
        assert size >= P and size % 16 == 0
        assert size - P < max(16, P / 4)
    for low in (128, 256, 512, 1024, 2048):
        assert len(set(sizes[low:2 * low])) == 4  # P = low + 1 ... 2 low
    assert sorted(set(sizes[:128])) == list(range(16, 129, 16))


def test_growth_from_a_trained_network_starts_at_its_patterns_and_reaches_the_optimum():
    X, y = _two_d_problem()
    lam = 1e-2
    Xb = cn.add_bias_column(X)
    rng = np.random.default_rng(7)
    W1 = rng.standard_normal((3, 5))
    # Neuron 1 is neuron 0 scaled (same pattern, one column), neuron 4 is unused.
    W1[:, 1] = 0.5 * W1[:, 0]
    w2 = np.array([0.8, 0.3, -1.2, 0.6, 0.0])
    network = cn.ReLUNetwork(jnp.asarray(W1), jnp.asarray(w2), bias=True)
    patterns = np.unique(np.asarray(cn.gate_masks(Xb, W1[:, :4])), axis=1)
    assert patterns.shape[1] == 3
    on_its_patterns = cvxpy_relu(Xb, y, patterns, lam)[0]
    optimum = cvxpy_relu(Xb, y, cn.gate_masks(Xb, cn.enumerate_gates_2d(X)), lam)[0]
    kwargs = dict(model="relu", solver="fista", bias=True, tol=1e-9, max_steps=100_000)

    # No growth round: the optimum over the network's own patterns, below its objective.
    with pytest.warns(cn.GrowthWarning, match="max_rounds"):
        first = cn.fit(X, y, lam, gates=cn.Grow(initial_network=network, max_rounds=0),
                       **kwargs)
    assert first.growth.history_num_patterns[0] == 3 and bool(first.converged)
    np.testing.assert_allclose(float(first.objective), on_its_patterns, rtol=1e-6)
    assert float(first.objective) <= float(cn.nonconvex_objective(network, X, y, lam))

    grown = cn.fit(X, y, lam, gates=cn.Grow(initial_network=network, tol=1e-5), **kwargs)
    assert grown.growth.stopped == "no violation" and bool(grown.converged)
    np.testing.assert_allclose(float(grown.objective), optimum, rtol=1e-6)

    with pytest.raises(ValueError, match="initial_network"):
        cn.fit(X, y, lam, gates=cn.Grow(initial_network=network), model="relu", bias=False)
    with pytest.raises(TypeError, match="initial_network"):
        cn.Grow(initial_network=W1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_oracle_finds_a_pattern_that_improves_the_objective(seed):
    """Planted: a teacher neuron whose pattern the sampled gates miss. Whenever adding that
    pattern lowers the optimum, the heuristic search reports a violation (and, adding what
    it found, the objective drops)."""
    rng = np.random.default_rng(seed)
    n, d = 60, 5
    X = rng.standard_normal((n, d))
    teacher = rng.standard_normal(d)
    y = 2.0 * np.maximum(X @ teacher, 0.0) + 0.01 * rng.standard_normal(n)
    lam = 1e-3
    gates = cn.sample_gates(jax.random.PRNGKey(seed), jnp.asarray(X), 6)
    planted = cn.gate_masks(X, teacher[:, None])
    assert not np.any(np.all(np.asarray(cn.gate_masks(X, gates)) == np.asarray(planted), axis=0))
    sol = cn.fit(X, y, lam, gates=gates, tol=1e-10, max_steps=100_000)
    with_teacher = cn.fit(X, y, lam, gates=jnp.concatenate([gates, teacher[:, None]], axis=1),
                          tol=1e-10, max_steps=100_000)
    assert float(with_teacher.objective) < float(sol.objective) * (1 - 1e-3)  # it does help
    rho = -cn.SquaredLoss().grad(sol.network.predict(X), jnp.asarray(y))
    found = cn.search_violations(X, rho, gates=gates)
    assert float(found.gated_values[0]) > lam * 1.01
    assert abs(float(found.values[0])) > lam * 1.01
    grown = cn.fit(X, y, lam, gates=jnp.concatenate([gates, found.units[:, :1]], axis=1),
                   tol=1e-10, max_steps=100_000)
    assert float(grown.objective) < float(sol.objective) * (1 - 1e-3)


def _certified_problem():
    X, y = _two_d_problem(seed=5)
    lam = 1e-2
    sol = cn.fit(X, y, lam, gates="exact", bias=True, model="relu", solver="admm", tol=1e-7,
                 feasibility_tol=1e-9, max_steps=100_000)
    assert bool(sol.converged)
    return X, y, lam, sol


def test_certify_an_optimal_and_a_truncated_network():
    X, y, lam, sol = _certified_problem()
    network = sol.network.pruned()
    certificate = cn.certify(network, X, y, lam)
    assert certificate.exact
    objective = float(sol.objective)
    np.testing.assert_allclose(float(certificate.objective), objective, rtol=1e-12)
    np.testing.assert_allclose(float(certificate.convex_objective), objective, rtol=1e-9)
    # Optimal: (almost) no violation, and a global lower bound within the solve's gap.
    assert float(certificate.violation) < 1e-2
    assert float(certificate.lower_bound) <= objective
    assert float(certificate.gap) <= 10 * float(sol.gap) + 1e-12

    # Truncated: drop the neuron with the largest output weight.
    drop = int(np.argmax(np.abs(np.asarray(network.w2))))
    keep = np.arange(network.w2.shape[0]) != drop
    truncated = cn.ReLUNetwork(network.W1[:, keep], network.w2[keep], bias=True)
    certificate = cn.certify(truncated, X, y, lam)
    assert float(certificate.violation) > 0.1
    assert float(certificate.improved_objective) < float(certificate.objective) * (1 - 1e-3)
    # The named neuron, added to the network, gives the reported objective.
    repaired = cn.ReLUNetwork(
        jnp.concatenate([truncated.W1, certificate.neuron_W1[:, None]], axis=1),
        jnp.concatenate([truncated.w2, certificate.neuron_w2[None]]), bias=True)
    np.testing.assert_allclose(float(cn.nonconvex_objective(repaired, X, y, lam)),
                               float(certificate.improved_objective), rtol=1e-10)
    # The global lower bound is below the optimum even from this poor dual point.
    assert float(certificate.lower_bound) <= objective


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_certify_in_higher_dimension(loss):
    """No exact oracle: the reverse map's convex objective is at most the network's, split
    neurons of one pattern merge, and the named neuron lowers the objective."""
    rng = np.random.default_rng(7)
    n, d, m = 80, 6, 5
    X = rng.standard_normal((n, d))
    y = np.sign(rng.standard_normal(n)) if loss == "logistic" else rng.standard_normal(n)
    W1 = rng.standard_normal((d + 1, m))
    w2 = rng.standard_normal(m)
    # Two copies of neuron 0 with the same pattern: the reverse map merges them.
    W1 = np.concatenate([W1, 0.5 * W1[:, :1]], axis=1)
    w2 = np.concatenate([w2, [w2[0]]])
    network = cn.ReLUNetwork(jnp.asarray(W1), jnp.asarray(w2), bias=True)
    lam = 1e-2
    certificate = cn.certify(network, X, y, lam, loss=loss)
    assert not certificate.exact and np.isnan(float(certificate.lower_bound))
    assert float(certificate.convex_objective) < float(certificate.objective)
    assert float(certificate.improved_objective) < float(certificate.objective)
    repaired = cn.ReLUNetwork(
        jnp.concatenate([network.W1, certificate.neuron_W1[:, None]], axis=1),
        jnp.concatenate([network.w2, certificate.neuron_w2[None]]), bias=True)
    np.testing.assert_allclose(float(cn.nonconvex_objective(repaired, X, y, lam, loss=loss)),
                               float(certificate.improved_objective), rtol=1e-10)


def test_growth_validation():
    X, y = _two_d_problem()
    with pytest.raises(ValueError, match="patterns_per_round"):
        cn.Grow(patterns_per_round=0)
    with pytest.raises(ValueError, match="drop_after"):
        cn.Grow(drop_after=0)
    with pytest.raises(TypeError, match="initial_gates"):
        cn.Grow(initial_gates=2.5)
    with pytest.raises(TypeError, match="outside jit"):
        jax.jit(lambda X: cn.fit(X, y, 1e-2, gates="grow").objective)(X)
    with pytest.raises(ValueError, match="grow"):
        cn.fit(X, y, 1e-2, gates="grown")
    with pytest.raises(TypeError, match="ReLUNetwork"):
        cn.certify(object(), X, y, 1e-2)
