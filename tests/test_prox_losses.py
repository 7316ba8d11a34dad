"""Proximal operators and losses against closed forms and autodiff."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cvxnn_jax as cn


def test_group_l2_prox_is_block_soft_threshold_and_optimal():
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.standard_normal(7)
        lam, scaling = rng.uniform(0, 2), rng.uniform(0.1, 3)
        u = np.asarray(cn.prox_group_l2(x, lam, scaling))
        norm, t = np.linalg.norm(x), lam * scaling
        expected = max(0.0, 1 - t / norm) * x
        np.testing.assert_allclose(u, expected, rtol=1e-13, atol=1e-15)
        # Optimality: x - u is a subgradient of t*||.|| at u.
        if np.linalg.norm(u) > 0:
            np.testing.assert_allclose(x - u, t * u / np.linalg.norm(u), rtol=1e-12)
        else:
            assert np.linalg.norm(x) <= t


def test_prox_and_norm_value_and_gradient_finite_at_zero():
    zero = jnp.zeros(5)
    assert jnp.all(cn.prox_group_l2(zero, 1.0) == 0)
    grad_prox = jax.jacfwd(lambda x: cn.prox_group_l2(x, 0.0))(zero)
    np.testing.assert_array_equal(grad_prox, np.eye(5))  # lam = 0: identity, even at 0
    for fn in (lambda x: jnp.sum(cn.prox_group_l2(x, 0.5)), cn.safe_norm):
        g = jax.grad(fn)(zero)
        assert jnp.all(jnp.isfinite(g)), g
    assert jnp.all(jax.grad(cn.safe_norm)(zero) == 0)


def test_l1_and_nonnegative():
    x = jnp.array([-3.0, -0.5, 0.0, 0.2, 4.0])
    np.testing.assert_allclose(cn.prox_l1(x, 1.0, 0.5), [-2.5, 0.0, 0.0, 0.0, 3.5])
    np.testing.assert_allclose(cn.prox_nonnegative(x), [0, 0, 0, 0.2, 4.0])


@pytest.mark.parametrize("name", ["squared", "logistic"])
def test_loss_gradient_bregman_and_fenchel_young(name):
    loss = cn.get_loss(name)
    rng = np.random.default_rng(1)
    n = 30
    y = rng.standard_normal(n) if name == "squared" else rng.choice([-1.0, 1.0], n)
    z, z2 = rng.standard_normal(n), rng.standard_normal(n)
    z, z2, y = map(jnp.asarray, (z, z2, y))
    np.testing.assert_allclose(loss.grad(z, y), jax.grad(loss.value)(z, y), rtol=1e-12)
    direct = loss.value(z2, y) - loss.value(z, y) - jnp.dot(loss.grad(z, y), z2 - z)
    np.testing.assert_allclose(loss.bregman(z2, z, y), direct, rtol=1e-10)
    # Small steps take the Taylor branch for the logistic loss; still exact to round-off.
    small = z + 1e-5 * (z2 - z)
    exact = jnp.asarray(loss.value(small, y) - loss.value(z, y) - jnp.dot(loss.grad(z, y), small - z))
    assert abs(float(loss.bregman(small, z, y)) - float(exact)) <= 1e-15
    # Fenchel-Young: zero exactly at rho = -grad L(z), positive elsewhere; this pins
    # the conjugate (dual) at every point of its domain's interior.
    rho = -loss.grad(z, y)
    assert abs(float(loss.fenchel_young(z, rho, y))) < 1e-14
    np.testing.assert_allclose(
        loss.value(z, y) - loss.dual(rho, y) + jnp.dot(rho, z), 0.0, atol=1e-14
    )
    assert float(loss.fenchel_young(z2, rho, y)) > 0
    np.testing.assert_allclose(
        loss.fenchel_young(z2, rho, y), loss.value(z2, y) - loss.dual(rho, y) + jnp.dot(rho, z2),
        rtol=1e-10,
    )


def test_logistic_dual_is_minus_infinity_outside_domain():
    loss = cn.LogisticLoss()
    y = jnp.array([1.0, -1.0])
    assert loss.dual(jnp.array([1.0, 0.0]), y) == -jnp.inf  # p = n rho y = 2 > 1
    assert loss.fenchel_young(jnp.zeros(2), jnp.array([-0.1, 0.0]), y) == jnp.inf


def test_logistic_certificate_holds_for_labels_off_plus_minus_one_under_jit():
    """Under the caller's jit fit cannot check the labels; the logistic conjugate is
    written for any non-zero label, so the gap still bounds the true excess (it assumed
    y^2 = 1 before, and reported a zero gap, "converged", for labels +-2)."""
    from reference import cvxpy_gated_relu

    rng = np.random.default_rng(4)
    n, d = 40, 4
    X = jnp.asarray(rng.standard_normal((n, d)))
    y = jnp.asarray(rng.choice([-1.0, 1.0], n) * rng.uniform(0.5, 2.0, n))
    loss = cn.LogisticLoss()
    z = jnp.asarray(rng.standard_normal(n))
    rho = -loss.grad(z, y)
    assert abs(float(loss.fenchel_young(z, rho, y))) < 1e-14
    np.testing.assert_allclose(loss.value(z, y) - loss.dual(rho, y) + jnp.dot(rho, z), 0.0,
                               atol=1e-14)

    gates = cn.sample_gates(jax.random.PRNGKey(0), X, 10)
    lam = 1e-2
    solve = jax.jit(lambda y: cn.fit(X, y, lam, gates=gates, loss="logistic", tol=1e-8,
                                     max_steps=50_000))
    sol = solve(y)
    optimum, _ = cvxpy_gated_relu(X, y, cn.gate_masks(X, gates), lam, loss="logistic")
    assert bool(sol.converged)
    np.testing.assert_allclose(float(sol.objective), optimum, rtol=1e-6)
    assert float(sol.gap) >= float(sol.objective) - optimum - 1e-9
