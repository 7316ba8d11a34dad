"""Every matrix product that a solve, a certificate or an implicit gradient traces runs at
``Precision.HIGHEST``: on GPUs and TPUs JAX's default float32 product is TF32 / bfloat16
passes, under which float32 FISTA stalled at a relative gap of 1.8e-2 on an H100 and
reported an objective 0.7% off its own weights (cvxnn_jax/_precision.py). The check reads
the traced programs, so it runs on the CPU, where the setting changes no numbers."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cvxnn_jax as cn
from cvxnn_jax._programs.gated_relu import GatedReLUProgram

from reference import planted_relu_problem


def _sub_jaxprs(value):
    if isinstance(value, jax.extend.core.ClosedJaxpr):
        yield value.jaxpr
    elif isinstance(value, jax.extend.core.Jaxpr):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _sub_jaxprs(item)


def _dot_precisions(jaxpr):
    """The ``precision`` of every ``dot_general`` in ``jaxpr`` and its sub-programs."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            yield eqn.params["precision"]
        for value in eqn.params.values():
            for sub in _sub_jaxprs(value):
                yield from _dot_precisions(sub)


def _assert_all_highest(fn, *args):
    precisions = list(_dot_precisions(jax.make_jaxpr(fn)(*args).jaxpr))
    assert precisions, "no matrix product traced: the check would be vacuous"
    highest = (jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST)
    assert all(p == highest for p in precisions), set(map(str, precisions))


@pytest.fixture(scope="module")
def data32():
    X, y = planted_relu_problem(0, n=30, d=3)
    X, y = jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32)
    return X, y, cn.sample_gates(jax.random.PRNGKey(0), X, 6)


def test_the_check_sees_default_precision_products(data32):
    """Without the library's setting a traced float32 product has no precision: the
    walker would report it (so the tests below can fail)."""
    X, _, gates = data32
    precisions = list(_dot_precisions(jax.make_jaxpr(lambda X, G: X @ G)(X, gates).jaxpr))
    assert precisions and all(p != (jax.lax.Precision.HIGHEST,) * 2 for p in precisions)


@pytest.mark.parametrize("model,solver", [("gated_relu", None), ("relu", "fista"),
                                          ("relu", "al"), ("relu", "admm"), ("relu", "ipm")])
def test_fit_traces_every_product_at_highest_precision(data32, model, solver):
    X, y, gates = data32
    solver = {None: None, "fista": cn.FISTA(), "al": cn.AugmentedLagrangian(),
              "admm": cn.ADMM(), "ipm": cn.InteriorPoint()}[solver]
    _assert_all_highest(lambda X, y, lam: cn.fit(X, y, lam, gates=gates, model=model,
                                                 solver=solver, max_steps=5).objective,
                        X, y, jnp.float32(1e-2))


def test_path_gradient_and_certificate_trace_products_at_highest_precision(data32):
    X, y, gates = data32
    lams = jnp.asarray([1e-1, 1e-2], jnp.float32)
    _assert_all_highest(lambda X, y: cn.fit_path(X, y, lams, gates=gates, max_steps=5).objective,
                        X, y)
    _assert_all_highest(jax.grad(lambda lam: cn.differentiable_fit(
        X, y, lam, gates=gates, tol=1e-4, max_steps=5).objective), jnp.float32(1e-2))
    network = cn.fit(X, y, 1e-2, gates=gates, model="relu", tol=1e-3, max_steps=20_000).network
    _assert_all_highest(lambda X, y: cn.certify(network, X, y, 1e-2, key=jax.random.PRNGKey(1)).objective,
                        X, y)


# ------------------------------------------------------------ residual coordinates
def _float32_wide_range(seed, shape):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 10.0 ** rng.uniform(-6, 6, shape)).astype(np.float32)


def test_error_free_transformations_are_exact_in_float32():
    """``two_sum`` / ``two_product`` return the rounding error exactly (checked in float64,
    where sums and products of two float32 numbers are exact); ``compensated_sum`` of
    terms that cancel to 1e-8 of their size matches ``math.fsum``; ``split_on_grid``
    makes a 0/1 matrix product exact."""
    from cvxnn_jax._precision import compensated_sum, split_on_grid, two_product, two_sum

    a, b = _float32_wide_range(0, 4000), _float32_wide_range(1, 4000)
    s, e = two_sum(jnp.asarray(a), jnp.asarray(b))
    np.testing.assert_array_equal(np.float64(s) + np.float64(e), np.float64(a) + np.float64(b))
    # Products within float32's exponent range (Veltkamp's split needs headroom).
    a, b = a / 1e3, b / 1e3
    p, e = two_product(jnp.asarray(a), jnp.asarray(b))
    np.testing.assert_array_equal(np.float64(p) + np.float64(e), np.float64(a) * np.float64(b))

    rng = np.random.default_rng(2)
    big = rng.standard_normal((7, 51)).astype(np.float32) * 30.0
    terms = np.concatenate([big, -big[:, ::-1]], axis=1)  # sums to zero exactly ...
    terms[:, 0] += np.float32(1e-6) * rng.standard_normal(7).astype(np.float32)  # ... nearly
    exact = np.array([math.fsum(map(float, row)) for row in terms])
    plain = np.float64(jnp.sum(jnp.asarray(terms), axis=1))
    compensated = np.float64(compensated_sum(jnp.asarray(terms), axis=1))
    np.testing.assert_allclose(compensated, exact, rtol=1e-6, atol=0)
    assert np.max(np.abs(plain - exact)) > 100 * np.max(np.abs(compensated - exact))

    W = jnp.asarray(_float32_wide_range(3, (40, 300)) / 1e5)
    masks = jnp.asarray(rng.random((200, 300)) < 0.5, jnp.float32)
    W_hi, W_lo = split_on_grid(W, masks.shape[1])
    np.testing.assert_array_equal(np.float64(W_hi) + np.float64(W_lo), np.float64(W))
    np.testing.assert_array_equal(np.float64(masks @ W_hi.T),
                                  np.float64(masks) @ np.float64(W_hi).T)


def test_residual_coordinates_give_float32_residuals_of_a_close_fit():
    """A close fit (residuals ~1e-3 of ``|y|``) in float32: ``matvec(W) - y`` keeps a few
    digits of the residual, ``forward`` in residual coordinates nearly all of them; a
    float32 ``fit`` uses them and two-word iterates, certifies a gap that float32 could
    not reach before, and its certificate stays an upper bound on the true excess over
    the float64 optimum."""
    from cvxnn_jax._losses import SquaredLoss

    X64, y64 = planted_relu_problem(0, n=300, d=20)
    gates = cn.sample_gates(jax.random.PRNGKey(0), jnp.asarray(X64), 100)
    best = cn.fit(jnp.asarray(X64), jnp.asarray(y64), 1e-3, gates=gates, tol=1e-10,
                  max_steps=50_000)
    masks = cn.gate_masks(jnp.asarray(X64), gates)
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    W = f32(best.weights)
    exact = (np.float64(X64.astype(np.float32)) * (np.float64(f32(masks)) @ np.float64(W).T)
             ).sum(1) - np.float64(y64.astype(np.float32))
    program = GatedReLUProgram(f32(X64), f32(masks), f32(y64), jnp.float32(1e-3),
                               SquaredLoss(), residual=True)
    accurate = np.float64(jax.jit(lambda p, W: p.forward(W))(program, W))
    plain = np.float64(program.matvec(W) - program.y)
    scale = np.max(np.abs(exact))
    assert scale < 1e-2 * np.max(np.abs(y64))  # the fit is close
    assert np.max(np.abs(accurate - exact)) <= 1e-6 * scale
    assert np.max(np.abs(plain - exact)) >= 100 * np.max(np.abs(accurate - exact))

    # Float32 certifies 1e-5 (measured: 2976 steps). With one-word iterates and
    # predictions it stalled at 6.8e-5 (3.1e-5 with residual coordinates alone) through
    # 20 000 steps.
    sol = cn.fit(f32(X64), f32(y64), 1e-3, gates=f32(gates), tol=1e-5, max_steps=6_000)
    assert bool(sol.converged) and sol.weights.dtype == jnp.float32
    p64 = GatedReLUProgram(jnp.asarray(X64), masks, jnp.asarray(y64), jnp.float64(1e-3),
                           SquaredLoss())
    true_objective = float(p64.objective(jnp.asarray(sol.weights, jnp.float64)))
    excess = true_objective - float(best.objective)
    assert 0.0 <= excess <= float(sol.gap) * (1 + 1e-3) + 1e-7 * abs(float(best.objective))


def test_two_word_group_prox_keeps_the_digits_of_a_small_move():
    """``prox_group_l2_increment`` of ``x_hi + x_lo + move``, added to the two words,
    against the float64 prox: about 1e-4 of float32's last place off where the
    shrinkage is small, while rounding ``x + move`` to float32 first is off by the last
    place; a group shrunk to zero says so (and FISTA then zeroes both words)."""
    from cvxnn_jax._precision import add_to_two_words
    from cvxnn_jax._prox import prox_group_l2, prox_group_l2_increment

    rng = np.random.default_rng(4)
    x = rng.standard_normal(50)
    x_hi = x.astype(np.float32)
    x_lo = (x - x_hi).astype(np.float32)
    move = (1e-6 * rng.standard_normal(50)).astype(np.float32)
    exact_input = np.float64(x_hi) + np.float64(x_lo) + np.float64(move)
    threshold = 1e-4 * np.linalg.norm(exact_input)
    exact = np.asarray(prox_group_l2(jnp.asarray(exact_input), threshold))
    increment, zero = prox_group_l2_increment(jnp.asarray(x_hi), jnp.asarray(x_lo),
                                              jnp.asarray(move), np.float32(threshold))
    assert not zero
    hi, lo = add_to_two_words(jnp.asarray(x_hi), jnp.asarray(x_lo), increment)
    assert np.all(np.float32(np.float64(hi) + np.float64(lo)) == np.asarray(hi))
    two_words = np.float64(hi) + np.float64(lo)
    one_word = np.float64(prox_group_l2(jnp.asarray(exact_input, jnp.float32),
                                        np.float32(threshold)))
    ulp = np.finfo(np.float32).eps * np.max(np.abs(exact))
    assert np.max(np.abs(two_words - exact)) <= 1e-3 * ulp
    assert np.max(np.abs(one_word - exact)) >= 0.1 * ulp

    _, zero = prox_group_l2_increment(jnp.asarray(x_hi), jnp.asarray(x_lo), jnp.asarray(move),
                                      np.float32(2 * np.linalg.norm(exact_input)))
    assert zero
