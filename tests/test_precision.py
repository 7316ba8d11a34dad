"""Every matrix product that a solve, a certificate or an implicit gradient traces runs at
``Precision.HIGHEST``: on GPUs and TPUs JAX's default float32 product is TF32 / bfloat16
passes, under which float32 FISTA stalled at a relative gap of 1.8e-2 on an H100 and
reported an objective 0.7% off its own weights (cvxnn_jax/_precision.py). The check reads
the traced programs, so it runs on the CPU, where the setting changes no numbers."""

import jax
import jax.numpy as jnp
import pytest

import cvxnn_jax as cn

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
