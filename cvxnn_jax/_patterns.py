"""Activation patterns: gates, masks, de-duplication and exact enumeration.

A gate is a vector ``g`` in R^d; its pattern is the column ``D = 1[X g >= 0]`` (ties
count as active, DESIGN.md section 2). ``gates`` has shape ``(d, P)`` and ``masks``
has shape ``(n, P)``. No bias column is ever added implicitly: use
:func:`add_bias_column` (or ``fit(..., bias=True)``) and pass the augmented data.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from ._precision import full_precision
from ._validation import check_data_matrix, check_key, is_concrete


def add_bias_column(X: ArrayLike) -> Array:
    """Append a column of ones: ``(n, d) -> (n, d + 1)``."""
    X = jnp.asarray(X)
    return jnp.concatenate([X, jnp.ones(X.shape[:-1] + (1,), X.dtype)], axis=-1)


@full_precision
def gate_masks(X: ArrayLike, gates: ArrayLike) -> Array:
    """Pattern masks ``1[X g >= 0]`` for every gate, as ``X``'s float dtype.

    **Arguments:**
    - X: ``(n, d)`` data.
    - gates: ``(d, P)`` gate vectors, one per column.

    **Returns:** ``(n, P)`` array of 0.0 / 1.0.
    """
    X = jnp.asarray(X)
    return (X @ jnp.asarray(gates, X.dtype) >= 0).astype(X.dtype)


def unique_patterns(X: ArrayLike, gates: ArrayLike) -> np.ndarray:
    """Indices of gates whose patterns are distinct and not all-zero, in first-seen order.

    Runs outside ``jit``: the number of distinct patterns depends on the data.
    """
    masks = np.asarray(gate_masks(X, gates)).astype(bool)
    packed = np.packbits(masks, axis=0)  # (ceil(n/8), P): one byte string per pattern
    _, first = np.unique(packed.T, axis=0, return_index=True)
    first = np.sort(first)
    nonzero = masks[:, first].any(axis=0)
    return first[nonzero]


@full_precision
def sample_gates(key: Array, X: ArrayLike, num_gates: int) -> Array:
    """Sample Gaussian gates ``g ~ N(0, I)`` with distinct, non-empty patterns on ``X``.

    Draws ``num_gates`` gates from ``key``, then drops gates whose pattern on ``X``
    duplicates an earlier one or is all-zero, so the result has ``P <= num_gates``
    columns. Reproducible: the same key and data give the same gates. Not jittable
    (``P`` depends on the data); sample once and pass the gates to ``fit``.

    **Arguments:**
    - key: a ``jax.random`` key.
    - X: ``(n, d)`` data (append the bias column first if the model uses one).
    - num_gates: number of gates to draw (>= 1).

    **Returns:** ``(d, P)`` gates, in ``X``'s dtype.
    """
    X = check_data_matrix(X)
    if isinstance(num_gates, bool) or not isinstance(num_gates, (int, np.integer)):
        raise TypeError(f"num_gates must be an int, got {type(num_gates).__name__}")
    if num_gates < 1:
        raise ValueError(f"num_gates must be >= 1, got {num_gates}")
    check_key(key)
    # Inside jit (even of constants) X arrives here traced, and so does a traced key.
    if not (is_concrete(X) and is_concrete(key)):
        raise TypeError(
            "sample_gates cannot run under jax.jit, vmap or grad: the number of distinct "
            "patterns of X depends on its values (and on key's); sample the gates outside "
            "and pass them in")
    gates = jax.random.normal(key, (X.shape[1], int(num_gates)), dtype=X.dtype)
    return gates[:, unique_patterns(X, gates)]


def enumerate_gates_1d(x: ArrayLike) -> Array:
    """All activation patterns of 1-D data with a bias column, exactly.

    For data ``x`` (shape ``(n,)``) augmented as ``[x, 1]``, every hyperplane pattern is
    a threshold pattern ``1[x >= b]`` or ``1[x <= b]``. With the points sorted, the
    ``n + 1`` thresholds in each direction give every such pattern; after dropping the
    all-zero pattern and duplicates, the gates ``(1, -x_j)`` and ``(-1, x_j)`` realise
    them exactly (``x_i - x_j >= 0`` is computed without rounding error).

    **Arguments:**
    - x: ``(n,)`` or ``(n, 1)`` inputs.

    **Returns:** ``(2, P)`` gates for the augmented data ``add_bias_column(x[:, None])``,
    with ``P = 2 * (number of distinct x) - 1``.
    """
    x = jnp.asarray(x)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"x must have shape (n,) or (n, 1) for 1-D enumeration, got {x.shape}")
    check_data_matrix(x[:, None], name="x")
    xs = jnp.sort(x)
    ones = jnp.ones_like(xs)
    up = jnp.stack([ones, -xs])  # 1[x >= x_j]: the top points from x_j up
    down = jnp.stack([-ones, xs])  # 1[x <= x_j]: the bottom points up to x_j
    gates = jnp.concatenate([up, down], axis=1)
    return gates[:, unique_patterns(add_bias_column(x[:, None]), gates)]


def enumerate_gates_2d(X: ArrayLike) -> Array:
    """All activation patterns of 2-D data with a bias column, exactly.

    Every affine half-plane pattern ``1[x . u >= c]`` on the points is realised by a
    direction ``u`` inside one cell of the arrangement of critical directions (those
    orthogonal to some ``x_i - x_j``, where the order of the projections changes) and a
    threshold between two consecutive projections. One direction per cell (the mid
    angle) and every mid-point threshold (plus one below all points) therefore give
    every pattern, each realised with no data point on the gate's hyperplane (a strict
    interior point of its cone, which :func:`cone_decomposition` relies on). Duplicate
    and all-zero patterns are dropped. ``O(n^3)`` candidates, so meant for small ``n``
    (a few hundred points at most).

    **Arguments:**
    - X: ``(n, 2)`` data, without the bias column.

    **Returns:** ``(3, P)`` gates for ``add_bias_column(X)``, ``P = O(n^2)``.
    """
    X = check_data_matrix(X)
    if X.shape[1] != 2:
        raise ValueError(f"X must have shape (n, 2) for 2-D enumeration, got {X.shape}")
    points = np.unique(np.asarray(X, dtype=np.float64), axis=0)
    i, j = np.triu_indices(points.shape[0], k=1)
    diff = points[i] - points[j]
    critical = np.arctan2(diff[:, 1], diff[:, 0]) + 0.5 * np.pi
    critical = np.mod(np.concatenate([critical, critical + np.pi]), 2 * np.pi)
    critical = np.unique(critical)
    if critical.size == 0:
        angles = np.array([0.0, np.pi])
    else:
        following = np.concatenate([critical[1:], critical[:1] + 2 * np.pi])
        angles = 0.5 * (critical + following)
    directions = np.stack([np.cos(angles), np.sin(angles)])  # (2, A)
    projections = np.sort(points @ directions, axis=0)  # (m, A)
    below = projections[:1] - 1.0
    mids = 0.5 * (projections[1:] + projections[:-1])
    thresholds = np.concatenate([below, mids], axis=0)  # (m, A)
    gates = np.concatenate([
        np.broadcast_to(directions[:, None, :], (2,) + thresholds.shape).reshape(2, -1),
        -thresholds.reshape(1, -1),
    ])
    gates = jnp.asarray(gates, X.dtype)
    return gates[:, unique_patterns(add_bias_column(X), gates)]
