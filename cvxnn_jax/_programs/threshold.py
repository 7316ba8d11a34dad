"""Threshold-activation networks as Lasso problems (DESIGN.md section 4 item 5).

Ergen, Gulluk, Lacotte & Pilanci, "Globally Optimal Training of Neural Networks with
Threshold Activation Functions" (ICLR 2023). A threshold unit with a trainable
amplitude computes ``s * 1[x . w >= 0]``.

Two layers. Training ``f(x) = sum_j alpha_j s_j 1[x . w_j >= 0]`` with the regulariser
``lam/2 sum_j (s_j^2 + alpha_j^2)`` is the Lasso over the binary pattern columns

    min_z  L(D z, y) + lam ||z||_1,     D = [1[X g_1 >= 0], ..., 1[X g_P >= 0]]  (n, P)

(AM-GM: ``(s^2 + alpha^2)/2 >= |s alpha|``, with equality at ``s = sqrt|z|``,
``alpha = sign(z) sqrt|z|``). The program is exact when the gates realise every pattern
of the data (``g = 0`` gives the all-ones pattern, which acts as a penalised bias);
with sampled gates it is the program over the sampled patterns. The papers write the
squared loss unscaled, ``1/2 ||.||^2 + beta ||z||_1``; this library's loss is
``1/(2n) ||.||^2``, so ``beta = n * lam``.

Deep networks whose last hidden layer sees a representation that is *shattered* (every
subset of the training points is cut out by some threshold unit) reach every pattern, and
the Lasso over all ``2^n`` patterns collapses to

    min_delta  1/(2n) ||delta - y||^2 + lam ((max_i delta_i)_+ + (max_i -delta_i)_+)

because the L1 norm of the cheapest combination of patterns equal to ``delta`` is
``max(delta)_+ + max(-delta)_+`` (the layer-cake decomposition). Its solution clips
``y`` at two levels, ``delta = clip(y, -T_-, T_+)``, where ``T_+ >= 0`` solves
``sum_i (y_i - T_+)_+ = n lam`` (``T_+ = 0`` if ``sum_i (y_i)_+ <= n lam``) and
``T_-`` likewise for ``-y``. For labels in {-1, +1}: ``delta = (1 - beta/n_+)_+`` on the
positives and ``-(1 - beta/n_-)_+`` on the negatives.
"""

from __future__ import annotations


import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from .._precision import full_precision
from .._deep_networks import DeepThresholdNetwork, ThresholdNetwork
from .._fit import report_convergence, resolve_sampled_gates
from .._losses import LogisticLoss, Loss, get_loss
from .._patterns import add_bias_column, gate_masks
from .._solution import Solution
from .._solvers.fista import FISTA, solution_figures
from .._validation import (
    check_data_matrix,
    check_lam,
    check_positive_scalar,
    check_targets,
)
from .lasso_1d import bucket_size, pad_columns, solve_lasso


def recover_threshold_network(gates: Array, z: Array, *, bias: bool = False,
                              activation: str = "threshold") -> ThresholdNetwork:
    """The two-layer threshold network of Lasso coefficients ``z`` (shape ``(P,)``).

    Unit ``i`` keeps the gate ``g_i`` (``(d', P)`` gates), amplitude ``sqrt|z_i|`` and
    output weight ``sign(z_i) sqrt|z_i|``: it outputs ``z_i 1[x . g_i >= 0]`` and costs
    ``lam |z_i|``.
    """
    root = jnp.sqrt(jnp.abs(z))
    return ThresholdNetwork(gates, root, jnp.sign(z) * root, jnp.zeros((), z.dtype),
                            activation, bias)


@full_precision
def fit_threshold(
    X,
    y,
    lam=1e-3,
    *,
    gates=None,
    loss: str | Loss = "squared",
    bias: bool = False,
    key=None,
    solver=None,
    tol=1e-6,
    max_steps=100_000,
    throw: bool = False,
) -> Solution:
    """Train a two-layer threshold network through its Lasso, with a certificate.

    Solves ``min_z L(D z, y) + lam ||z||_1`` over the patterns ``D = 1[X g >= 0]`` of
    the gates with FISTA, and recovers the :class:`ThresholdNetwork` whose objective
    ``L(f(X), y) + lam/2 (||s||^2 + ||alpha||^2)`` equals the Lasso objective.

    **Arguments:**
    - X: ``(n, d)`` data.
    - y: ``(n,)`` targets (labels in {-1, +1} for ``loss="logistic"``).
    - lam: scalar regularisation strength (>= 0); ``beta = n * lam``.
    - gates: ``(d', P)`` gates (``d' = d + 1`` with ``bias=True``; include a zero column
      for the all-ones pattern), or an int: the number of Gaussian gates to sample from
      ``key`` (default 100).
    - loss: ``"squared"`` or ``"logistic"``.
    - bias: append a column of ones to ``X`` (the network appends it to each input).
    - key: ``jax.random`` key for sampling gates (default ``PRNGKey(0)``).
    - solver, tol, max_steps, throw: as in :func:`cvxnn_jax.fit`.

    **Returns:** a :class:`~cvxnn_jax.Solution` whose ``weights`` are the ``(P,)``
    coefficients ``z`` and ``network`` a :class:`ThresholdNetwork`.
    """
    loss_fn = get_loss(loss)
    if solver is None:
        solver = FISTA()
    elif not isinstance(solver, FISTA):
        raise TypeError(f"solver must be None or a FISTA instance, got {type(solver).__name__}")
    if not isinstance(bias, bool):
        raise TypeError(f"bias must be a bool, got {type(bias).__name__}")
    X = check_data_matrix(X)
    y = check_targets(y, X.shape[0], X.dtype, binary_labels=isinstance(loss_fn, LogisticLoss))
    lam = check_lam(lam, X.dtype)
    check_positive_scalar(tol, "tol", allow_zero=True)
    check_positive_scalar(max_steps, "max_steps", integer=True)
    if bias:
        X = add_bias_column(X)
    gates = resolve_sampled_gates(gates, X, key, "fit_threshold")
    P = gates.shape[1]
    A = pad_columns(gate_masks(X, gates), bucket_size(P))
    z, _, state = solve_lasso(A, y, lam, jnp.asarray(tol, X.dtype),
                              jnp.asarray(max_steps, jnp.int32), loss_fn, solver, False)
    z = z[:P]
    solution = Solution(
        weights=z,
        gates=gates,
        network=recover_threshold_network(gates, z, bias=bias),
        **solution_figures(state),
        lam=lam,
    )
    return report_convergence(solution, tol, throw, "fit_threshold")


# ------------------------------------------------------------ shattered (deep) case
def _clip_level(v: Array, budget: Array) -> Array:
    """``T >= 0`` with ``sum_i (v_i - T)_+ = budget`` for ``v >= 0`` (0 if ``sum v <=
    budget``); ``max(v)`` when ``budget = 0``. Sorting, as for a simplex projection."""
    u = jnp.sort(v)[::-1]
    css = jnp.cumsum(u)
    k = jnp.arange(1, v.shape[0] + 1, dtype=v.dtype)
    valid = u * k > css - budget
    last = jnp.max(jnp.where(valid, jnp.arange(v.shape[0]), 0))
    return jnp.maximum((css[last] - budget) / k[last], 0.0)


def max_penalty(delta: Array) -> Array:
    """``(max_i delta_i)_+ + (max_i -delta_i)_+``: the least L1 norm of a combination of
    binary patterns equal to ``delta``."""
    return jnp.maximum(jnp.max(delta), 0.0) + jnp.maximum(jnp.max(-delta), 0.0)


def shattered_threshold_solution(y, lam) -> tuple[Array, Array]:
    """Closed-form solution of the deep threshold program when the data are shattered.

    ``min_delta 1/(2n) ||delta - y||^2 + lam ((max delta)_+ + (max -delta)_+)``
    (unscaled, ``beta = n * lam``). Pure and jit/vmap-compatible.

    **Arguments:**
    - y: ``(n,)`` targets.
    - lam: scalar regularisation strength (>= 0).

    **Returns:** ``(delta, optimum)``: the optimal predictions ``(n,)`` and the optimal
    value. For labels in {-1, +1}, ``delta = (1 - n lam/n_+)_+`` on the positives and
    ``-(1 - n lam/n_-)_+`` on the negatives.
    """
    y = jnp.asarray(y)
    lam = jnp.asarray(lam, y.dtype)
    n = y.shape[0]
    upper = _clip_level(jnp.maximum(y, 0.0), n * lam)
    lower = _clip_level(jnp.maximum(-y, 0.0), n * lam)
    delta = jnp.clip(y, -lower, upper)
    optimum = 0.5 * jnp.sum((delta - y) ** 2) / n + lam * max_penalty(delta)
    return delta, optimum


def layer_cake(delta: Array) -> tuple[Array, Array]:
    """Patterns and coefficients with ``sum_k z_k h_k = delta`` and ``||z||_1 =
    max_penalty(delta)``.

    Positive part: with ``v_(1) <= ... <= v_(n)`` the sorted values of ``delta_+``,
    pattern ``k`` is ``1[delta_+ >= v_(k)]`` with coefficient ``v_(k) - v_(k-1)``; the
    negative part likewise with negative coefficients.

    **Returns:** ``(patterns (n, 2n) booleans, coefficients (2n,))``.
    """
    def half(v):
        levels = jnp.sort(v)
        coefficients = jnp.diff(levels, prepend=0.0)
        return v[:, None] >= levels[None, :], coefficients

    up, cu = half(jnp.maximum(delta, 0.0))
    down, cd = half(jnp.maximum(-delta, 0.0))
    return jnp.concatenate([up, down], axis=1), jnp.concatenate([cu, -cd])


def deep_threshold_network(X, delta, *, key=None) -> DeepThresholdNetwork:
    """A three-layer threshold network that outputs ``delta`` on ``X`` at cost
    ``max_penalty(delta)``.

    Layer 1 projects onto a direction ``g`` (drawn from ``key``; the training points
    must project to distinct values) and has one unit ``1[g . x >= t_i]`` per training
    point: a thermometer code that layer 2 shatters, since any sequence ``u_i`` is
    ``V . code_i`` for ``V = diff(u)``. Layer 2 has one unit per pattern of
    :func:`layer_cake` (weights ``diff(2 h - 1)``, bias ``-1/2``) with amplitude
    ``sqrt|z_k|``; output weights ``sign(z_k) sqrt|z_k|``. Runs outside ``jit``.

    **Arguments:**
    - X: ``(n, d)`` distinct training points.
    - delta: ``(n,)`` target outputs (e.g. from :func:`shattered_threshold_solution`).
    - key: ``jax.random`` key for the projection (default ``PRNGKey(0)``).
    """
    X = check_data_matrix(X)
    delta = jnp.asarray(delta, X.dtype)
    n, d = X.shape
    if delta.shape != (n,):
        raise ValueError(f"delta must have shape ({n},) to match X, got {delta.shape}")
    if np.unique(np.asarray(X), axis=0).shape[0] < n:
        raise ValueError("X has repeated rows: no network separates equal inputs, so the "
                         "data cannot be shattered")
    key = jax.random.PRNGKey(0) if key is None else key
    for _ in range(10):
        key, sub = jax.random.split(key)
        g = jax.random.normal(sub, (d,), X.dtype)
        projections = X @ g
        if np.unique(np.asarray(projections)).shape[0] == n:
            break
    else:
        raise ValueError("could not find a direction on which the rows of X project to "
                         "distinct values")
    order = jnp.argsort(projections)
    thresholds = projections[order]
    W1 = jnp.broadcast_to(g[:, None], (d, n))
    patterns, z = layer_cake(delta)
    u = 2.0 * patterns[order].astype(X.dtype) - 1.0  # +-1 in projection order
    V = jnp.diff(u, axis=0, prepend=0.0)
    root = jnp.sqrt(jnp.abs(z))
    return DeepThresholdNetwork(
        weights=(W1, V),
        biases=(-thresholds, jnp.full(z.shape, -0.5, X.dtype)),
        amplitudes=(jnp.ones(n, X.dtype), root),
        alpha=jnp.sign(z) * root,
    )


class ShatteredSolution(eqx.Module):
    """What :func:`fit_deep_threshold` returns.

    **Fields:**
    - predictions: ``(n,)`` optimal outputs ``delta`` on the training points.
    - objective: the optimal value (exact: closed form).
    - network: a :class:`DeepThresholdNetwork` that attains it.
    - lam: the regularisation strength used.
    """

    predictions: Array
    objective: Array
    network: DeepThresholdNetwork
    lam: Array


@full_precision
def fit_deep_threshold(X, y, lam=1e-3, *, key=None) -> ShatteredSolution:
    """Train a deep threshold network (squared loss) whose hidden layer shatters ``X``.

    The closed form :func:`shattered_threshold_solution` gives the optimum; the network
    of :func:`deep_threshold_network` attains it, so its objective ``1/(2n)||f(X) -
    y||^2 + lam * net.weight_decay()`` equals the optimum.

    **Arguments:**
    - X: ``(n, d)`` distinct training points.
    - y: ``(n,)`` targets.
    - lam: scalar regularisation strength (>= 0); ``beta = n * lam``.
    - key: ``jax.random`` key for the first layer's projection.
    """
    X = check_data_matrix(X)
    y = check_targets(y, X.shape[0], X.dtype, binary_labels=False)
    lam = check_lam(lam, X.dtype)
    delta, optimum = shattered_threshold_solution(y, lam)
    return ShatteredSolution(delta, optimum, deep_threshold_network(X, delta, key=key), lam)
