"""Deep networks on 1-D data as Lasso problems (issue 5, DESIGN.md section 4 item 4)."""

import equinox as eqx
import jax
import jax.monitoring
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import cvxnn_jax as cn

from reference import cvxpy_lasso, cvxpy_min_l1_interpolation

# Figure 3 of Zeger et al. (arXiv 2403.01046).
FIG3_X = np.array([0.0, 4.0, 5.0, 7.0, 10.0, 11.0])
FIG3_Y = np.array([0.0, 0.0, 0.0, 2.0, 3.0, 3.0])

ARCHITECTURES = [(2, "relu"), (2, "leaky_relu"), (2, "absolute"), (2, "threshold"),
                 (2, "sign"), (3, "relu"), (4, "relu")]


def _random_problem(seed, n=6):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-2.0, 2.0, n))
    y = np.sin(2.0 * x) + 0.3 * rng.standard_normal(n)
    return x, y


_dictionary_1d = jax.jit(cn.dictionary_1d, static_argnums=(1, 2, 3))
_matrix = eqx.filter_jit(lambda features, x: features.matrix(x))
_nonconvex_objective = eqx.filter_jit(cn.nonconvex_objective)


def _np_matrix(features, x):
    """The dictionary in plain numpy (an independent evaluation of the chain recursion:
    layer l computes act(s_l (h - c_l)) with c_1 = a_1, c_l = h_{l-1}(a_l))."""
    s, a = np.asarray(features.signs), np.asarray(features.breakpoints)
    first = {"relu": lambda u: np.maximum(u, 0.0),
             "leaky_relu": lambda u: np.maximum(u, features.negative_slope * u),
             "absolute": np.abs,
             "threshold": lambda u: (u >= 0).astype(float),
             "sign": lambda u: np.where(u >= 0, 1.0, -1.0)}[features.activation]
    c = [a[:, 0]]

    def layers(t, k):
        for l in range(k):
            t = (first if l == 0 else (lambda u: np.maximum(u, 0.0)))(s[:, l] * (t - c[l]))
        return t

    for l in range(1, s.shape[1]):
        c.append(layers(a[:, l], l))
    return layers(np.asarray(x, float)[:, None], s.shape[1])


def _dictionary(x, depth, activation="relu", slope=0.01):
    features = _dictionary_1d(jnp.asarray(x), depth, activation, slope)
    return features.take(cn.unique_features(features, x))


def _explicit_objective(net, x, y, lam):
    """The non-convex objective written out from the weights (not via weight_decay)."""
    n = x.shape[0]
    fit = 0.5 * np.sum((np.asarray(net.predict(x)) - y) ** 2) / n
    if isinstance(net, cn.DeepNarrowNetwork):
        L = net.depth
        reg = (np.sum(np.abs(np.asarray(net.W)) ** L) + np.sum(np.abs(np.asarray(net.alpha)) ** L)) / L
    else:
        reg = 0.5 * (np.sum(np.asarray(net.amplitudes) ** 2) + np.sum(np.asarray(net.alpha) ** 2))
    return fit + lam * reg


# ------------------------------------------------------------------ dictionaries
def test_dictionary_columns_are_the_papers_features():
    x = jnp.asarray(FIG3_X)
    n = x.shape[0]
    t = np.asarray(FIG3_X)[:, None]
    D = lambda *args: _matrix(_dictionary_1d(x, *args), x)
    ramps = np.concatenate([np.maximum(t - t.T, 0), np.maximum(t.T - t, 0)], axis=1)
    np.testing.assert_array_equal(cn.dictionary_1d(x, 2).matrix(x), ramps)  # eager
    np.testing.assert_array_equal(D(2, "relu", 0.01), ramps)  # jit: a pure function of x
    leaky = lambda u: np.maximum(u, 0.1 * u)
    np.testing.assert_allclose(D(2, "leaky_relu", 0.1),
                               np.concatenate([leaky(t - t.T), leaky(t.T - t)], axis=1))
    np.testing.assert_array_equal(D(2, "absolute", 0.01)[:, :n], np.abs(t - t.T))
    np.testing.assert_array_equal(D(2, "threshold", 0.01),
                                  np.concatenate([t >= t.T, t <= t.T], axis=1))
    np.testing.assert_array_equal(D(2, "sign", 0.01)[:, :n], np.where(t >= t.T, 1.0, -1.0))
    assert D(3, "relu", 0.01).shape == (n, 4 * n**2)
    # Against an independent numpy evaluation of the recursion.
    for depth in (3, 4):
        features = _dictionary_1d(x, depth, "relu", 0.01)
        np.testing.assert_allclose(_matrix(features, x), _np_matrix(features, FIG3_X), atol=1e-13)
    # Depth 3: relu(-(relu(t - 5) - 2)) is the decreasing ramp capped between 5 and 7.
    f3 = cn.Features1D(jnp.array([[1.0, -1.0]]), jnp.array([[5.0, 7.0]]), jnp.array([False]))
    np.testing.assert_array_equal(_matrix(f3, x)[:, 0], [2, 2, 2, 0, 0, 0])
    # Depth 4: a_1 = 2*4 - 0 = 8 reflected; the unit ramps from 5 to 8 (Figure 3).
    d4 = _dictionary_1d(x, 4, "relu", 0.01)
    assert d4.num_features == 16 * n**3
    hit = np.flatnonzero(np.all(np.asarray(d4.signs) == [-1, -1, 1], axis=1)
                         & np.all(np.asarray(d4.breakpoints) == [8, 4, 5], axis=1))
    assert hit.size == 1 and bool(d4.reflected[hit[0]])
    np.testing.assert_array_equal(_matrix(d4, x)[:, hit[0]], FIG3_Y)
    np.testing.assert_allclose(d4.take(hit)(jnp.array(6.5)), [1.5])


# ------------------------------------------------------------------ Figure 3
def test_figure3_minimum_l1_interpolation_and_the_reflection():
    norms = {}
    for depth, expected in [(2, 2.0), (3, 1.0), (4, 1.0)]:
        features = _dictionary(FIG3_X, depth)
        A = _np_matrix(features, FIG3_X)
        norms[depth], _, _ = cvxpy_min_l1_interpolation(A, FIG3_Y)
        np.testing.assert_allclose(norms[depth], expected, rtol=1e-7)
        # Our Lasso as beta -> 0: ||z||_1 tends to the minimum norm from below.
        beta = 1e-4
        sol = cn.fit_1d(FIG3_X, FIG3_Y, beta / 6, depth=depth, tol=1e-10, max_steps=200_000)
        assert bool(sol.converged)
        l1 = float(jnp.sum(jnp.abs(sol.coefficients)))
        assert expected - 1e-3 < l1 <= expected
        # Single units that interpolate the data exactly (with the offset).
        centred = A - A.mean(0)
        yc = FIG3_Y - FIG3_Y.mean()
        coef = centred.T @ yc / np.sum(centred**2, axis=0)
        exact = np.flatnonzero(np.max(np.abs(centred * coef - yc[:, None]), axis=0) < 1e-12)
        if depth < 4:
            assert exact.size == 0  # no single ramp or capped ramp fits
        else:
            # Depth 4: exactly the ramp from 5 to 8, 8 = reflection of 0 about 4.
            assert exact.size >= 1
            for j in exact:
                np.testing.assert_allclose(abs(coef[j]), 1.0, rtol=1e-12)
                assert bool(features.reflected[j]) and float(features.breakpoints[j, 0]) == 8.0
            j = exact[0]
            unit = cn.recover_network_1d(features.take(np.array([j])), jnp.array([coef[j]]),
                                         jnp.asarray(FIG3_Y.mean() - coef[j] * A[:, j].mean()))
            points = np.concatenate([FIG3_X, [6.5, 8.0, 9.0]])
            np.testing.assert_allclose(unit.predict(points), np.concatenate([FIG3_Y, [1.5, 3, 3]]),
                                       atol=1e-12)
            np.testing.assert_allclose(unit.weight_decay(), 1.0, rtol=1e-12)
    assert norms[2] > norms[3] + 0.5


# ------------------------------------------------------------------ optimality
@pytest.mark.parametrize("depth,activation", ARCHITECTURES,
                         ids=[f"L{d}-{a}" for d, a in ARCHITECTURES])
def test_lasso_matches_cvxpy_and_recovered_network(depth, activation):
    x, y = _random_problem(depth)
    n = x.shape[0]
    for beta in (0.05, 0.5):
        lam = beta / n
        tol = 1e-9
        sol = cn.fit_1d(x, y, lam, depth=depth, activation=activation, negative_slope=0.2,
                        tol=tol, max_steps=200_000)
        A = _np_matrix(sol.features, x)
        reference, _, _ = cvxpy_lasso(A, y, lam, offset=True)
        objective = float(sol.objective)
        assert bool(sol.converged)
        np.testing.assert_allclose(objective, reference, rtol=1e-6)
        assert float(sol.gap) <= tol * objective
        assert float(sol.gap) >= objective - reference - 1e-9 * reference
        assert float(sol.dual_objective) <= reference * (1 + 1e-9)
        # The reconstructed network has this depth and attains the Lasso objective.
        net = sol.network
        if activation in ("threshold", "sign"):
            assert isinstance(net, cn.ThresholdNetwork) and net.gates.shape[0] == 2
        else:
            assert isinstance(net, cn.DeepNarrowNetwork) and net.depth == depth
        z, xi = np.asarray(sol.coefficients), float(sol.offset)
        np.testing.assert_allclose(net.predict(x), A @ z + xi, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(_explicit_objective(net, x, y, lam), objective, rtol=1e-8)


def _init_network(key, depth, m, x):
    kw, kb, ka = jax.random.split(key, 3)
    W = jax.random.normal(kw, (m, depth - 1))
    B = jax.random.normal(kb, (m, depth - 1)) * jnp.std(x)
    alpha = jax.random.normal(ka, (m,))
    return cn.DeepNarrowNetwork(W, B, alpha, jnp.zeros(()))


def _gradient_descent(x, y, lams, depth, num_starts=20, m=8, steps=3000):
    """Adam on the non-convex objective from ``num_starts`` random networks, for each
    lam: the lowest objective each run visited, shape ``(len(lams), num_starts)``."""
    x, y = jnp.asarray(x), jnp.asarray(y)
    optimiser = optax.adam(1e-2)

    def run(key, lam):
        def objective(net):
            return 0.5 * jnp.mean((net.predict(x) - y) ** 2) + lam * net.weight_decay()

        net = _init_network(key, depth, m, x)
        state = optimiser.init(net)

        def step(carry, _):
            net, state = carry
            value, grad = jax.value_and_grad(objective)(net)
            updates, state = optimiser.update(grad, state)
            return (optax.apply_updates(net, updates), state), value

        (net, _), values = jax.lax.scan(step, (net, state), None, length=steps)
        return jnp.minimum(jnp.min(values), objective(net))

    keys = jax.random.split(jax.random.PRNGKey(depth), num_starts)
    runs = jax.vmap(jax.vmap(run, in_axes=(0, None)), in_axes=(None, 0))
    return np.asarray(jax.jit(runs)(keys, jnp.asarray(lams)))


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_gradient_descent_never_beats_the_lasso(depth):
    x, y = _random_problem(10 + depth)
    n = x.shape[0]
    lams = np.array([0.05, 0.2, 0.8]) / n
    reached = _gradient_descent(x, y, lams, depth)
    assert np.all(np.isfinite(reached))
    for lam, runs in zip(lams, reached):
        sol = cn.fit_1d(x, y, lam, depth=depth, tol=1e-10, max_steps=200_000)
        optimum = float(sol.objective)
        # Every value gradient descent visited is a real network's objective: none is
        # below the certified optimum (up to the certificate itself).
        assert runs.min() >= optimum - float(sol.gap) - 1e-12
        # ...and gradient descent is not a strawman: its best start gets within 10%.
        assert runs.min() <= 1.1 * optimum


def _random_units(key, depth, num, lo, hi):
    ks, ka = jax.random.split(key)
    signs = jnp.where(jax.random.bernoulli(ks, 0.5, (num, depth - 1)), 1.0, -1.0)
    breakpoints = jax.random.uniform(ka, (num, depth - 1), minval=lo, maxval=hi)
    return cn.Features1D(signs, breakpoints, jnp.zeros(num, bool))


@pytest.mark.parametrize("depth", [3, 4])
def test_no_unit_of_any_breakpoints_violates_the_dual_certificate(depth):
    """Weak duality with the Lasso's dual point bounds *every* network of this depth:
    if ``|rho^T f(x)| <= lam`` for all unit-weight chains f, no network beats the Lasso.
    Random units with breakpoints anywhere (not only at data points or reflections)."""
    x, y = _random_problem({3: 22, 4: 27}[depth])  # data where depth 2 is worse than 3
    n = x.shape[0]
    lam = 0.3 / n

    def dual_point(depth_used):
        sol = cn.fit_1d(x, y, lam, depth=depth_used, tol=1e-12, max_steps=400_000)
        return (y - np.asarray(sol.network.predict(x))) / n

    units = _random_units(jax.random.PRNGKey(depth), depth, 100_000, x.min() - 1, x.max() + 1)
    F = _np_matrix(units, x)
    worst = np.max(np.abs(F.T @ dual_point(depth)))
    assert worst <= lam * (1 + 1e-6)
    # The check has teeth: the two-layer program's dual point is violated (depth 4 adds
    # no value over depth 3 on the data: every chain feature is a clipped ramp, and one
    # whose breakpoint lies between data points is, on the data, a convex combination of
    # clipped ramps with breakpoints at data points; reflections add optimal solutions).
    assert np.max(np.abs(F.T @ dual_point(2))) > lam * 1.01


# ------------------------------------------------------------------ API
def _count_compiles(fn):
    count = []
    listener = lambda name, *a, **k: count.append(name) if name == "/jax/core/compile/backend_compile_duration" else None
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        jax.block_until_ready(fn())
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    return len(count)


def test_new_lam_does_not_recompile_and_fit_1d_traces():
    x, y = _random_problem(3)
    sol = cn.fit_1d(x, y, 0.01, depth=3, tol=1e-9)
    assert _count_compiles(lambda: cn.fit_1d(x, y, 0.02, depth=3, tol=1e-8).objective) == 0
    # Without dedupe, fit_1d traces: the whole fit inside the caller's jit, same optimum.
    traced = jax.jit(lambda x, y, lam: cn.fit_1d(x, y, lam, depth=3, dedupe=False, tol=1e-9))
    full = traced(jnp.asarray(x), jnp.asarray(y), 0.01)
    assert full.coefficients.shape == (4 * x.shape[0] ** 2,)
    np.testing.assert_allclose(full.objective, sol.objective, rtol=1e-7)


def test_network_module_one_scalar_example_pruning_and_objective():
    lam = 1e-3
    sol = cn.fit_1d(FIG3_X, FIG3_Y, lam, depth=4, tol=1e-8)
    net = sol.network
    assert net(jnp.array(7.0)).shape == () and net(jnp.array([7.0])).shape == ()
    np.testing.assert_allclose(net(7.0), net(jnp.array([7.0])))
    with pytest.raises(ValueError, match="one scalar input"):
        net(jnp.ones(2))
    # cvxnn_jax.nonconvex_objective (loss + lam * weight_decay) is the same objective.
    np.testing.assert_allclose(_nonconvex_objective(net, FIG3_X[:, None], FIG3_Y, lam),
                               sol.objective, rtol=1e-9)
    np.testing.assert_allclose(_explicit_objective(net, FIG3_X, FIG3_Y, lam), sol.objective,
                               rtol=1e-9)
    # Pruning keeps the function.
    pruned = net.pruned()
    assert pruned.alpha.shape[0] == np.count_nonzero(np.asarray(sol.coefficients)) > 0
    grid = np.linspace(-3.0, 14.0, 69)
    np.testing.assert_allclose(pruned.predict(grid), net.predict(grid), atol=1e-12)
    # Gradients flow through the recovered module (it is an ordinary network).
    grads = jax.grad(lambda n: n(6.0))(net)
    assert np.all(np.isfinite(np.asarray(grads.W)))


def test_constant_targets():
    x, _ = _random_problem(0)
    sol = cn.fit_1d(x, np.full(x.shape, 2.5), 0.1, depth=2)
    assert float(sol.objective) == 0.0 and bool(sol.converged)
    np.testing.assert_allclose(sol.network.predict(x), 2.5)


x_ok, y_ok = _random_problem(0)


def _with(array, index, value):
    array = array.copy()
    array[index] = value
    return array


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(x=np.ones((8, 2))), ValueError, r"x must have shape \(n,\)"),
        (dict(x=np.zeros(0), y=np.zeros(0)), ValueError, "x is empty"),
        (dict(x=_with(x_ok, 2, np.nan)), ValueError, "x contains NaN or inf"),
        (dict(x="points"), TypeError, "x must be an array"),
        (dict(y=_with(y_ok, 1, np.inf)), ValueError, "y contains NaN or inf"),
        (dict(y=y_ok[:-1]), ValueError, "y has 5 entries but x has 6"),
        (dict(lam=-0.1), ValueError, "lam must be >= 0"),
        (dict(lam=np.nan), ValueError, "lam must be finite"),
        (dict(depth=5), ValueError, "depth must be 2, 3 or 4"),
        (dict(depth=2.0), TypeError, "depth must be an int"),
        (dict(depth=3, activation="leaky_relu"), ValueError, "activation='relu' only"),
        (dict(activation="tanh"), ValueError, "activation must be one of"),
        (dict(activation="leaky_relu", negative_slope=1.5), ValueError, "negative_slope"),
        (dict(tol=-1.0), ValueError, "tol must be"),
        (dict(max_steps=0), ValueError, "max_steps must be"),
        (dict(solver="adam"), TypeError, "solver must be"),
    ],
)
def test_fit_1d_validation_names_the_argument(kwargs, error, match):
    args = dict(x=x_ok, y=y_ok, lam=0.01)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        cn.fit_1d(args.pop("x"), args.pop("y"), **args)
