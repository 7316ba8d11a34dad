"""Many sampled gates, few neurons: a working set of gates against FISTA on every gate.

Sampling more gates covers more of the arrangement, but the optimum at a moderate lam
uses few of them. ``solver=cn.WorkingSet(capacity)`` solves on ``capacity`` gates at a
time and certifies on all of them. Data: scikit-learn's digits (no download), "is it
a 3?" with the logistic loss.
Run: python examples/many_gates.py   (about 20 s on 2 CPU cores)
"""

import time

import jax
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import cvxnn_jax as cn

X, digit = load_digits(return_X_y=True)
y = np.where(digit == 3, 1.0, -1.0).astype(np.float32)
X, X_test, y, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
scaler = StandardScaler().fit(X)
X, X_test = scaler.transform(X).astype(np.float32), scaler.transform(X_test).astype(np.float32)
gates = cn.sample_gates(jax.random.PRNGKey(0), X, num_gates=2000)
lam, tol = 2e-3, 1e-4
print(f"n={X.shape[0]}, d={X.shape[1]}, {gates.shape[1]} distinct gates, lam={lam}, tol={tol}")

for name, solver in [("FISTA, every gate", cn.FISTA()),
                     ("WorkingSet(capacity=128)", cn.WorkingSet(capacity=128))]:
    fit = lambda: cn.fit(X, y, lam, gates=gates, loss="logistic", tol=tol, solver=solver)
    jax.block_until_ready(fit())  # compile
    start = time.perf_counter()
    sol = jax.block_until_ready(fit())
    seconds = time.perf_counter() - start
    neurons = int(np.sum(np.linalg.norm(np.asarray(sol.weights), axis=0) > 0))
    accuracy = float(np.mean(np.sign(sol.network.predict(X_test)) == y_test))
    print(f"{name:>26}: {seconds:6.2f} s, objective {float(sol.objective):.6f}, relative gap "
          f"{float(sol.relative_gap):.1e} (converged: {bool(sol.converged)}), "
          f"{neurons} neurons, test accuracy {accuracy:.4f}")
