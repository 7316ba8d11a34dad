"""Train a two-layer gated-ReLU network to a certified global optimum.

Data: scikit-learn's breast-cancer set (ships with scikit-learn, no download).
Run: python examples/quickstart.py
"""

import time

import jax
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import cvxnn_jax as cn

X, y = load_breast_cancer(return_X_y=True)
y = 2.0 * y - 1.0  # labels in {-1, +1} for the logistic loss
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train = scaler.transform(X_train).astype(np.float32)
X_test = scaler.transform(X_test).astype(np.float32)

lam = 1e-3
gates = cn.sample_gates(jax.random.PRNGKey(0), X_train, num_gates=200)
start = time.perf_counter()
solution = cn.fit(X_train, y_train, lam, gates=gates, loss="logistic", tol=1e-4)
jax.block_until_ready(solution)
seconds = time.perf_counter() - start

network = solution.network
accuracy = lambda X, y: float(np.mean(np.sign(network.predict(X)) == y))
print(f"patterns (distinct gates)  {gates.shape[1]}")
print(f"objective                  {float(solution.objective):.6f}")
print(f"duality gap (certificate)  {float(solution.gap):.2e}  "
      f"(relative {float(solution.relative_gap):.1e}, converged: {bool(solution.converged)})")
print(f"non-convex objective       "
      f"{float(cn.nonconvex_objective(network, X_train, y_train, lam, loss='logistic')):.6f}")
print(f"train accuracy             {accuracy(X_train, y_train):.4f}")
print(f"test accuracy              {accuracy(X_test, y_test):.4f}")
print(f"active neurons             {int(network.active.sum())} of {network.w2.shape[0]}")
print(f"steps, seconds (with jit)  {int(solution.num_steps)}, {seconds:.2f}")
