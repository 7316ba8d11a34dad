"""Certify a network trained with optax Adam, then grow patterns to the global optimum.

2-D data with a bias column, so the dual-violation oracle is exact: ``cn.certify``
gives a global lower bound on the best objective any two-layer ReLU network of any
width can reach, and names the neuron whose addition lowers Adam's objective most.
``fit(..., gates=cn.Grow(...))`` then grows activation patterns from 8 random gates
until the oracle finds no violation: a certified global optimum.

Run: python examples/certify_adam.py   (about a minute on a laptop CPU)
"""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import cvxnn_jax as cn  # noqa: E402

rng = np.random.default_rng(0)
X = rng.uniform(-1, 1, (40, 2))
y = np.sin(3 * X[:, 0]) + X[:, 1] ** 2
lam, width = 1e-2, 8


def objective(params):
    W1, w2 = params
    return cn.nonconvex_objective(cn.ReLUNetwork(W1, w2, bias=True), X, y, lam)


@jax.jit
def train(params):
    optimizer = optax.adam(1e-2)

    def step(carry, _):
        params, state = carry
        updates, state = optimizer.update(jax.grad(objective)(params), state)
        return (optax.apply_updates(params, updates), state), None

    (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), None, 5000)
    return params


k1, k2 = jax.random.split(jax.random.PRNGKey(0))
params = train((jax.random.normal(k1, (3, width)) / np.sqrt(3),
                jax.random.normal(k2, (width,)) / np.sqrt(width)))
adam_network = cn.ReLUNetwork(*params, bias=True)
certificate = cn.certify(adam_network, X, y, lam)
print(f"Adam, width {width}:        objective {float(certificate.objective):.6f}")
print(f"  global lower bound       {float(certificate.lower_bound):.6f} (exact oracle: "
      f"{certificate.exact})")
print(f"  dual violation           {float(certificate.violation):.3g} (0 at a global optimum)")
print(f"  with the named neuron    {float(certificate.improved_objective):.6f}")

solution = cn.fit(X, y, lam, gates=cn.Grow(initial_gates=8, tol=1e-3), model="relu",
                  solver="admm", bias=True, tol=1e-4, feasibility_tol=1e-8, max_steps=100_000)
growth = solution.growth
print(f"grown patterns:            objective {float(solution.objective):.6f} after "
      f"{growth.num_rounds} rounds, {int(growth.history_num_patterns[-1])} patterns, "
      f"{int(solution.network.active.sum())} neurons")
print(f"  global lower bound       {float(growth.lower_bound):.6f}; stopped: {growth.stopped}")
print(f"  relative gap to the global optimum <= "
      f"{(float(solution.objective) - float(growth.lower_bound)) / float(solution.objective):.2e}")
best = cn.certify(solution.network.pruned(), X, y, lam)
print(f"certify(grown network):    violation {float(best.violation):.2e}, "
      f"Adam is {100 * (float(certificate.objective) / float(solution.objective) - 1):.1f}% above")
assert jnp.isfinite(best.lower_bound)
