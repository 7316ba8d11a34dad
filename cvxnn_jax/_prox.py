"""Proximal operators, all with one signature.

``prox(x, hyperparam, scaling)`` returns
``argmin_z 1/2 ||z - x||^2 + scaling * h(z; hyperparam)``.

Each operator acts on one block (a vector, or an array treated as one block); groups
are handled by ``jax.vmap`` over the group axis, never by Python loops. All of them
are jit- and vmap-compatible, and their values and gradients are finite at zero.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike


def safe_norm(x: ArrayLike, axis=None, keepdims: bool = False) -> Array:
    """Euclidean norm whose gradient is 0 (not NaN) at x = 0.

    Uses the double-``where`` trick: the square root never sees a zero argument on
    the differentiated branch.
    """
    x = jnp.asarray(x)
    sq = jnp.sum(x * x, axis=axis, keepdims=keepdims)
    positive = sq > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def prox_group_l2(x: ArrayLike, lam: ArrayLike, scaling: ArrayLike = 1.0) -> Array:
    """Block soft-threshold: prox of ``lam * ||z||_2`` over the whole block ``x``.

    **Arguments:**
    - x: array of any shape, treated as one group.
    - lam: scalar regularisation strength (>= 0).
    - scaling: scalar step size multiplying ``lam``.

    **Returns:** ``max(0, 1 - scaling*lam/||x||) * x``, same shape as ``x``.
    """
    x = jnp.asarray(x)
    norm = safe_norm(x)
    threshold = jnp.asarray(scaling, x.dtype) * jnp.asarray(lam, x.dtype)
    nonzero = norm > 0
    # Guard the division on the branch that is not taken, so gradients stay finite. At
    # x = 0 the factor is 0 for threshold > 0 and 1 for threshold = 0 (prox = identity).
    ratio = jnp.where(nonzero, threshold / jnp.where(nonzero, norm, 1.0), jnp.sign(threshold))
    return jnp.maximum(1.0 - ratio, 0.0) * x


def prox_group_l2_increment(x_hi: Array, x_lo: Array, move: Array, lam: ArrayLike,
                            scaling: ArrayLike = 1.0) -> tuple[Array, Array]:
    """:func:`prox_group_l2` of ``x + move`` for ``x = x_hi + x_lo`` held in two words,
    returned as an increment over ``x``: ``(increment, zero)`` with
    ``prox = x + increment``, and ``zero`` (a boolean scalar) true where the prox is
    exactly zero (``x + increment`` need not round to zero then).

    The increment is ``move * c - x * t`` with ``t = min(1, scaling*lam/||x + move||)``
    and ``c = 1 - t``: near a fixed point ``move`` and the shrinkage ``x * t`` are small
    and nearly cancel, and computing their difference as such keeps the digits that
    rounding ``x + move`` to one word would lose (FISTA in float32: the iterate moves by
    less than its last place long before the solve is certified). Add it to the two
    words with :func:`~cvxnn_jax._precision.add_to_two_words`.
    """
    norm = safe_norm(x_hi + move)
    threshold = jnp.asarray(scaling, x_hi.dtype) * jnp.asarray(lam, x_hi.dtype)
    zero = norm <= threshold
    t = jnp.where(zero, 1.0, threshold / jnp.where(zero, 1.0, norm))
    return move * (1.0 - t) - x_hi * t - x_lo * t, zero


def prox_l1(x: ArrayLike, lam: ArrayLike, scaling: ArrayLike = 1.0) -> Array:
    """Soft-threshold: prox of ``lam * ||z||_1`` (elementwise).

    **Arguments:** as :func:`prox_group_l2`; ``lam`` may also broadcast against ``x``.
    """
    x = jnp.asarray(x)
    threshold = jnp.asarray(scaling, x.dtype) * jnp.asarray(lam, x.dtype)
    return jnp.sign(x) * jnp.maximum(jnp.abs(x) - threshold, 0.0)


def prox_nonnegative(x: ArrayLike, hyperparam=None, scaling: ArrayLike = 1.0) -> Array:
    """Projection onto the non-negative orthant (prox of its indicator).

    ``hyperparam`` and ``scaling`` are accepted for the common signature and ignored:
    the indicator is invariant to scaling.
    """
    del hyperparam, scaling
    return jnp.maximum(jnp.asarray(x), 0.0)
