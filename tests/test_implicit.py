"""Implicit differentiation of solves: gradients with respect to lam, X and y equal
central finite differences of re-solves (float64, tight tolerances, small problems)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cvxnn_jax as cn

from reference import planted_relu_problem

# (model, loss, solver, options): ReLU solves are asked for a tight gap and feasibility,
# so that re-solves are accurate enough for finite differences of the weights.
# The first case solves its adjoint system by conjugate gradients, the others densely.
CASES = [
    ("gated_relu", "squared", None, dict(tol=1e-12, max_steps=100_000, adjoint="cg")),
    ("gated_relu", "logistic", None, dict(tol=1e-12, max_steps=100_000)),
    ("relu", "squared", "admm", dict(tol=1e-10, feasibility_tol=1e-12, max_steps=400_000)),
    ("relu", "logistic", "al", dict(tol=1e-10, feasibility_tol=1e-12, max_steps=400_000)),
    # solver=None: the interior point, which stops strictly inside the cones.
    ("relu", "squared", None, dict(tol=1e-10, feasibility_tol=1e-12, max_steps=100)),
]


def _problem(loss, seed=0, n=40, d=3, num_gates=8):
    X, y = planted_relu_problem(seed, n=n, d=d)
    if loss == "logistic":
        y = np.where(y > np.median(y), 1.0, -1.0)
    gates = cn.sample_gates(jax.random.PRNGKey(seed), X, num_gates)
    return jnp.asarray(X), jnp.asarray(y), gates


def _scalar_of_solution(solution, queries, weights):
    """Predictions, objective and recovered weights, all in one scalar."""
    network = solution.network
    return (jnp.dot(network.predict(queries), weights) + 3.0 * solution.objective
            + jnp.sum(jnp.sin(solution.weights)) + jnp.sum(network.W1 * network.w2))


def _central_difference(f, point, direction, eps):
    """``(f(p + eps d) - f(p - eps d)) / (2 eps)``, the perturbations made in NumPy."""
    plus = [np.asarray(p) + eps * d for p, d in zip(point, direction)]
    minus = [np.asarray(p) - eps * d for p, d in zip(point, direction)]
    return (float(f(*plus)) - float(f(*minus))) / (2 * eps)


@pytest.mark.parametrize("model,loss,solver,options", CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2] or 'default'}" for c in CASES])
def test_gradients_equal_finite_differences(model, loss, solver, options):
    X, y, gates = _problem(loss)
    rng = np.random.default_rng(1)
    queries = jnp.asarray(rng.standard_normal((5, X.shape[1])))
    query_weights = jnp.asarray(rng.standard_normal(5))
    lam = jnp.asarray(1e-2)
    options = dict(options)
    tol, max_steps = options.pop("tol"), options.pop("max_steps")

    # One compiled function serves the gradient and every re-solve: tol and max_steps are
    # traced. (Inside jit the labels of the logistic loss are not checked, so y can be
    # perturbed off {-1, +1}.)
    @jax.jit
    def value_and_grad(X, y, lam, tol, max_steps):
        def f(X, y, lam):
            solution = cn.differentiable_fit(X, y, lam, gates=gates, model=model, loss=loss,
                                             solver=solver, tol=tol, max_steps=max_steps,
                                             **options)
            aux = (solution.num_steps, solution.converged)
            return _scalar_of_solution(solution, queries, query_weights), aux

        (value, num_steps), grads = jax.value_and_grad(f, argnums=(0, 1, 2), has_aux=True)(
            X, y, lam)
        return value, grads, num_steps

    _, grads, (num_steps, converged) = value_and_grad(X, y, lam, tol, max_steps)
    assert bool(converged)
    zero = (np.zeros(X.shape), np.zeros(y.shape), np.zeros(()))
    directions = {
        "lam": (zero[0], zero[1], np.ones(())),
        "X": (rng.standard_normal(X.shape), zero[1], zero[2]),
        "y": (zero[0], rng.standard_normal(y.shape), zero[2]),
    }
    for name, direction in directions.items():
        budget = (tol, max_steps)
        if loss == "logistic" and name == "y":
            # Off {-1, +1} the logistic certificate is not valid (LogisticLoss.dual assumes
            # labels and can report a zero gap), so these re-solves ignore it: a negative
            # tol (accepted inside jit) never stops the loop, which runs a fixed budget of
            # twice the steps the solve at the labels needed to reach tol.
            budget = (-1.0, 2 * int(num_steps))
        eps = 1e-5 * (float(lam) if name == "lam" else 1.0)
        f = lambda X, y, lam: value_and_grad(X, y, lam, *budget)[0]
        numeric = _central_difference(f, (X, y, lam), direction, eps)
        implicit = sum(float(np.vdot(g, d)) for g, d in zip(grads, direction))
        np.testing.assert_allclose(implicit, numeric, rtol=1e-4, err_msg=name)


def test_jacrev_envelope_and_values_equal_fit():
    # A vector output (jacrev) against finite differences; the envelope theorem (the
    # derivative of the optimal objective in lam is the regulariser divided by lam); and
    # the values are fit's. One compiled function returns the values and the Jacobians.
    X, y, gates = _problem("squared", seed=2)
    lam = 2e-2

    def outputs(lam):
        solution = cn.differentiable_fit(X, y, lam, gates=gates, tol=1e-12)
        return solution.network.predict(X[:4]), solution.objective, solution.weights

    values_and_jacobians = jax.jit(lambda lam: (outputs(lam), jax.jacrev(outputs)(lam)))
    (predictions, objective, weights), (jacobian, objective_slope, _) = values_and_jacobians(lam)
    eps = 1e-5 * lam
    numeric = (values_and_jacobians(lam + eps)[0][0] - values_and_jacobians(lam - eps)[0][0]) / (
        2 * eps)
    np.testing.assert_allclose(jacobian, numeric, rtol=1e-4, atol=1e-8)
    reference = cn.fit(X, y, lam, gates=gates, tol=1e-12)
    np.testing.assert_allclose(objective_slope, jnp.sum(jnp.linalg.norm(weights, axis=0)),
                               rtol=1e-8)
    np.testing.assert_allclose(weights, reference.weights, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(objective, reference.objective, rtol=1e-13)
    np.testing.assert_allclose(predictions, reference.network.predict(X[:4]), rtol=1e-12)


def test_differentiable_fit_validation():
    X, y, gates = _problem("squared")
    with pytest.raises(ValueError, match="adjoint"):
        cn.differentiable_fit(X, y, 1e-2, gates=gates, adjoint="lu")
    with pytest.raises(TypeError, match="gates must be an array"):
        jax.grad(lambda X: cn.differentiable_fit(X, y, 1e-2, gates=5).objective)(X)
