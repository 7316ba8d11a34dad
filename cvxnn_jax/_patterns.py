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

from ._validation import check_data_matrix


def add_bias_column(X: ArrayLike) -> Array:
    """Append a column of ones: ``(n, d) -> (n, d + 1)``."""
    X = jnp.asarray(X)
    return jnp.concatenate([X, jnp.ones(X.shape[:-1] + (1,), X.dtype)], axis=-1)


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
