"""The dual-violation oracle: which neurons would lower the objective.

For a dual point ``rho`` (``(n,)``, ``-grad L`` at a network's predictions) the
semi-infinite dual of the two-layer network over *all* activation patterns (Ergen &
Pilanci; DESIGN.md section 2) asks

    max_{||u|| <= 1}  |rho^T sigma(X u)|  <=  lam,

with ``sigma(t) = max(t, a t)`` the activation. A unit ``u`` that breaks it is a neuron
whose addition (first-layer weights ``sqrt(t) u``, output weight
``sign(rho^T sigma(X u)) sqrt(t)``, small ``t > 0``) lowers the objective at the rate
``|rho^T sigma(X u)| - lam``. For the gated-ReLU program the constraint is
``max_g ||X^T D_g rho|| <= lam`` over gates ``g``; ``||X^T D_u rho|| >= |rho^T (X u)_+|``,
so a ReLU violation at ``u`` is also a gated violation at the gate ``u``.

Two searches:

- :func:`search_violations` (any dimension): projected gradient ascent on the sphere
  from many starts at once (the current neurons, their gates, the gated maximisers
  ``X^T D_i rho`` of the current patterns, data points and random directions), one
  vmapped batch of matmuls per step, with a per-start step size that doubles on
  success and halves on failure. What it reports is a certificate *relative to what it
  searched*: it can miss a violating unit.
- :func:`exact_violation` (data with 1 or 2 features plus the bias column): the exact
  maximum. On each cell of the arrangement ``{x_k . u = 0}`` the value is linear,
  ``c_D . u``, so the maximiser over the cell's closure on the sphere is ``c_D / ||c_D||``,
  the normalised projection of ``c_D`` on one bounding plane, or an edge of the cell
  (the cross product of two planes' normals in 3-D; a plane's direction in 2-D).
  Evaluating the value at every such candidate for every cell gives the maximum
  exactly, and with it a global lower bound on the non-convex network's optimum.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ._precision import full_precision
from ._patterns import enumerate_gates_1d, enumerate_gates_2d, gate_masks
from ._programs.relu import activation
from ._prox import safe_norm


def normalize_columns(U: Array) -> Array:
    """Columns of ``U`` scaled to unit norm (zero columns stay zero)."""
    norms = safe_norm(U, axis=0)
    return U / jnp.where(norms > 0, norms, 1.0)


def unit_values(X: Array, rho: Array, U: Array, slope=0.0) -> Array:
    """``rho^T sigma(X u)`` for each column ``u`` of ``U`` (``(d, k)`` -> ``(k,)``)."""
    return rho @ activation(X @ U, slope)


def gated_values(X: Array, rho: Array, gates: Array) -> Array:
    """``||X^T D_g rho||`` for each gate column ``g`` (``(d, k)`` -> ``(k,)``)."""
    return safe_norm(X.T @ (gate_masks(X, gates) * rho[:, None]), axis=0)


class Oracle(eqx.Module):
    """Settings of the heuristic violation search (:func:`search_violations`).

    **Fields:**
    - num_random: random Gaussian starts (each searched with both signs).
    - num_data: starts at data points (rows of ``X``, chosen at random).
    - num_steps: ascent steps from every start.
    """

    num_random: int = eqx.field(static=True, default=256)
    num_data: int = eqx.field(static=True, default=64)
    num_steps: int = eqx.field(static=True, default=60)


class Violations(eqx.Module):
    """What a violation search found: one row per start, best first.

    **Fields:**
    - units: ``(d, k)`` unit vectors ``u`` (columns).
    - values: ``(k,)`` ``rho^T sigma(X u)`` (signed: the sign of the output weight).
    - gated_values: ``(k,)`` ``||X^T D_u rho||`` (the gated-ReLU dual value at gate ``u``).
    """

    units: Array
    values: Array
    gated_values: Array


@eqx.filter_jit
def _ascend(X, rho, starts, signs, slope, num_steps: int):
    """Maximise ``signs * rho^T sigma(X u)`` over unit ``u``, from every start column."""
    tiny = jnp.finfo(X.dtype).tiny

    def value(T):
        return signs * (rho @ activation(T, slope))

    def ascent_direction(T):
        derivative = jnp.where(T >= 0, 1.0, slope)
        return normalize_columns(X.T @ (derivative * rho[:, None]) * signs)

    U = normalize_columns(starts)
    T = X @ U
    initial = (U, T, value(T), jnp.ones_like(signs))

    def step(carry, _):
        U, T, best, eta = carry
        candidate = normalize_columns(U + eta * ascent_direction(T))
        T_candidate = X @ candidate
        v = value(T_candidate)
        accept = v > best
        U = jnp.where(accept, candidate, U)
        T = jnp.where(accept, T_candidate, T)
        best = jnp.where(accept, v, best)
        eta = jnp.where(accept, jnp.minimum(2.0 * eta, 1e6), jnp.maximum(0.5 * eta, tiny))
        return (U, T, best, eta), None

    (U, T, best, _), _ = jax.lax.scan(step, initial, None, length=num_steps)
    return U, signs * best


@full_precision
def search_violations(X, rho, slope=0.0, *, gates=None, neurons=None, key=None,
                      oracle: Oracle = Oracle()) -> Violations:
    """Search for unit vectors ``u`` with large ``|rho^T sigma(X u)|`` (heuristic).

    **Arguments:**
    - X: ``(n, d)`` data (bias column included if the model has one).
    - rho: ``(n,)`` dual point, ``-grad L`` at the current predictions.
    - slope: the activation's negative slope (0 for ReLU).
    - gates: ``(d, P)`` current gates, or None; their patterns' gated maximisers
      ``X^T D_i rho`` and the gates themselves are starts.
    - neurons: ``(d, m)`` first-layer weights of the current network, or None (starts).
    - key: ``jax.random`` key for the random and data starts (default ``PRNGKey(0)``).
    - oracle: an :class:`Oracle` with the search's settings.

    **Returns:** :class:`Violations`, sorted by ``|values|`` (largest first). The largest
    ``|value|`` is a lower bound on ``max_u |rho^T sigma(X u)|``, not the maximum itself.
    """
    X = jnp.asarray(X)
    rho = jnp.asarray(rho, X.dtype)
    n, d = X.shape
    key = jax.random.PRNGKey(0) if key is None else key
    random_key, data_key = jax.random.split(key)
    starts = [jax.random.normal(random_key, (d, oracle.num_random), X.dtype)]
    rows = jax.random.choice(data_key, n, (min(oracle.num_data, n),), replace=False)
    starts.append(X[rows].T)
    if gates is not None:
        gates = jnp.asarray(gates, X.dtype)
        starts += [gates, X.T @ (gate_masks(X, gates) * rho[:, None])]
    if neurons is not None:
        starts.append(jnp.asarray(neurons, X.dtype))
    starts = jnp.concatenate(starts, axis=1)
    starts = jnp.concatenate([starts, starts], axis=1)
    k = starts.shape[1] // 2
    signs = jnp.concatenate([jnp.ones(k, X.dtype), -jnp.ones(k, X.dtype)])
    units, values = _ascend(X, rho, starts, signs, jnp.asarray(slope, X.dtype),
                            oracle.num_steps)
    order = jnp.argsort(-jnp.abs(values))
    units, values = units[:, order], values[order]
    return Violations(units, values, gated_values(X, rho, units))


def has_exact_oracle(X, bias: bool) -> bool:
    """Whether :func:`exact_violation` applies: 1 or 2 features plus the bias column."""
    return bias and X.shape[1] in (2, 3)


def exact_cells(X) -> Array:
    """Gates of every full-dimensional cell of ``X``'s arrangement (``X`` with its bias
    column last and 1 or 2 features): ``enumerate_gates_1d`` / ``enumerate_gates_2d``."""
    X = jnp.asarray(X)
    if X.shape[1] == 2:
        return enumerate_gates_1d(X[:, 0])
    if X.shape[1] == 3:
        return enumerate_gates_2d(X[:, :2])
    raise ValueError(f"exact cells need 1 or 2 features plus the bias column, got {X.shape[1]} "
                     "columns")


@eqx.filter_jit
def _exact_max(X, rho, slope, cells):
    """``(max_u rho^T sigma(X u), argmax, max_u -rho^T sigma(X u), argmax)`` exactly."""
    masks = gate_masks(X, cells)
    C = X.T @ ((slope + (1.0 - slope) * masks) * rho[:, None])  # (d, P): c_D of each cell
    d = X.shape[1]
    normals = normalize_columns(X.T)  # (d, n)
    if d == 2:
        edges = jnp.stack([-normals[1], normals[0]])  # each plane is a line: its direction
    else:
        i, j = np.triu_indices(X.shape[0], k=1)
        edges = normalize_columns(jnp.cross(X[i], X[j]).T)
    base = jnp.concatenate([normalize_columns(C), edges], axis=1)
    base = jnp.concatenate([base, -base], axis=1)

    def best(U):
        v = unit_values(X, rho, U, slope)
        hi, lo = jnp.argmax(v), jnp.argmin(v)
        return v[hi], U[:, hi], v[lo], U[:, lo]

    result = best(base)
    if d == 3:
        # Each cell's functional projected on each bounding plane (both signs: the
        # maximiser of -value on a face is the normalised projection of -c_D).
        def on_plane(carry, normal):
            projected = normalize_columns(C - normal[:, None] * (normal @ C)[None, :])
            candidate = best(jnp.concatenate([projected, -projected], axis=1))
            hi = candidate[0] > carry[0]
            lo = candidate[2] < carry[2]
            carry = (jnp.where(hi, candidate[0], carry[0]), jnp.where(hi, candidate[1], carry[1]),
                     jnp.where(lo, candidate[2], carry[2]), jnp.where(lo, candidate[3], carry[3]))
            return carry, None

        result, _ = jax.lax.scan(on_plane, result, normals.T)
    return result


@full_precision
def exact_violation(X, rho, slope=0.0, cells=None) -> tuple[Array, Array]:
    """The exact ``max_{||u|| = 1} |rho^T sigma(X u)|`` and a unit attaining it.

    **Arguments:**
    - X: ``(n, 2)`` or ``(n, 3)`` data whose last column is the bias column of ones.
    - rho: ``(n,)`` dual point.
    - slope: the activation's negative slope.
    - cells: the gates of every cell (:func:`exact_cells`), if already computed.

    **Returns:** ``(value, unit)``: ``value`` is signed (its sign is the output weight's),
    ``|value|`` is the maximum; ``unit`` has shape ``(d,)``. Outside ``jit`` (the cells
    depend on the data); ``O(n^3)`` work in 2-D.
    """
    X = jnp.asarray(X)
    rho = jnp.asarray(rho, X.dtype)
    cells = exact_cells(X) if cells is None else cells
    hi, u_hi, lo, u_lo = _exact_max(X, rho, jnp.asarray(slope, X.dtype), cells)
    take_hi = hi >= -lo
    return jnp.where(take_hi, hi, lo), jnp.where(take_hi, u_hi, u_lo)


@full_precision
def exact_gated_violation(X, rho, cells=None) -> tuple[Array, Array]:
    """The exact ``max_g ||X^T D_g rho||`` over every pattern, and a gate attaining it.

    Same data requirements as :func:`exact_violation`.
    """
    X = jnp.asarray(X)
    cells = exact_cells(X) if cells is None else cells
    values = gated_values(X, jnp.asarray(rho, X.dtype), cells)
    best = jnp.argmax(values)
    return values[best], cells[:, best]
