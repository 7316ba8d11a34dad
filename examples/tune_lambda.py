"""Tune lambda by gradient descent on a validation loss, through the implicit gradient.

The validation MSE of the network fitted at lambda is a function of lambda whose
derivative ``cvxnn_jax.differentiable_fit`` supplies by implicit differentiation of the
solve (no unrolling of the solver's loop). Adam descends on ``log lambda``; a grid of
lambdas from ``fit_path`` shows where the minimum really is.

Data: scikit-learn's diabetes set, standardised, split 3:1; gated-ReLU network, 60
sampled gates and a bias column; float64 (the gradient is as accurate as the solve).

Run: python examples/tune_lambda.py
"""

import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from sklearn.datasets import load_diabetes  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import cvxnn_jax as cn  # noqa: E402

X, y = load_diabetes(return_X_y=True)
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.25, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)
mean, std = y_train.mean(), y_train.std()
y_train, y_val = (y_train - mean) / std, (y_val - mean) / std
gates = cn.sample_gates(jax.random.PRNGKey(0), cn.add_bias_column(X_train), num_gates=60)
options = dict(gates=gates, bias=True, tol=1e-8)


def validation_mse(log_lam):
    solution = cn.differentiable_fit(X_train, y_train, jnp.exp(log_lam), **options)
    return jnp.mean((solution.network.predict(X_val) - y_val) ** 2)


value_and_grad = jax.jit(jax.value_and_grad(validation_mse))
optimizer = optax.adam(optax.cosine_decay_schedule(0.3, 25), b1=0.5)
log_lam = jnp.log(1e-2)
state = optimizer.init(log_lam)
start = time.perf_counter()
print(" step   lambda     validation MSE   d MSE / d log(lambda)")
for step in range(25):
    value, grad = value_and_grad(log_lam)
    if step % 3 == 0 or step == 24:
        print(f"{step:5d}   {float(jnp.exp(log_lam)):.3e}   {float(value):.5f}          {float(grad):+.4f}")
    updates, state = optimizer.update(grad, state)
    log_lam = optax.apply_updates(log_lam, updates)
seconds = time.perf_counter() - start
tuned = float(jnp.exp(log_lam))

# The grid, for comparison: one compiled, warm-started path.
lams = np.geomspace(1.0, 1e-3, 40)
path = cn.fit_path(X_train, y_train, lams, warm_start=True, **options)
grid_mse = np.mean((np.asarray(jax.vmap(lambda n: n.predict(X_val))(path.network)) - y_val) ** 2,
                   axis=1)
best = int(np.argmin(grid_mse))
print(f"gradient descent: lambda = {tuned:.3e}, validation MSE {float(value_and_grad(log_lam)[0]):.5f} "
      f"({seconds:.1f} s for 25 steps, compile included)")
print(f"grid of 40:       lambda = {lams[best]:.3e}, validation MSE {grid_mse[best]:.5f}")
