"""Full-precision float32 matrix products for everything that a certificate depends on.

On GPUs and TPUs, JAX multiplies float32 matrices in reduced precision by default (TF32
on NVIDIA Ampere and Hopper, bfloat16 passes on TPU: about 1e-3 relative error). FISTA's
steps and the duality gap are then computed from products that are off by more than the
tolerance: measured on an H100 (gated ReLU, n=1000, d=50, P=1000, float32, tol=1e-4),
the solve stalled at a relative gap of 1.8e-2 after 50000 steps and its reported
objective was 0.7% below the objective of its own weights, while with full precision it
converged in 20450 steps (2.4 s). A certified solver cannot run on such products, so
every public entry point that solves, certifies or evaluates an objective runs under
``jax.default_matmul_precision("highest")``. On the CPU (and in float64 anywhere) this
changes nothing: those products are exact already.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def full_precision(fn):
    """``fn`` with its matrix products traced at ``Precision.HIGHEST``.

    The setting is read when the products are traced, so it holds inside the caller's own
    ``jax.jit`` too; compiled executables are cached separately per setting.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with jax.default_matmul_precision("highest"):
            return fn(*args, **kwargs)

    return wrapper


# ---------------------------------------------------------------------------------------
# Error-free transformations (Dekker 1971, Knuth; Ogita, Rump & Oishi 2005) for sums that
# must be right to the precision of a small *result* computed from large terms: the
# residual ``A x - y`` of a close fit in float32 (GatedReLUProgram.forward). XLA does not
# reassociate floating-point arithmetic, so these identities hold as written.
def two_sum(a, b):
    """``(s, e)`` with ``s = fl(a + b)`` and ``s + e = a + b`` exactly."""
    s = a + b
    b_virtual = s - a
    return s, (a - (s - b_virtual)) + (b - b_virtual)


def add_to_two_words(hi, lo, increment):
    """``hi + lo + increment`` as two words ``(hi', lo')`` with ``hi' = fl(hi' + lo')``:
    the increment's digits below ``hi``'s last place are kept in ``lo'``."""
    s, error = two_sum(hi, increment)
    return two_sum(s, lo + error)


def _split(a):
    # Veltkamp's split: a = hi + lo with hi holding the upper half of the significand.
    factor = jnp.asarray(2.0 ** ((jnp.finfo(a.dtype).nmant + 2) // 2) + 1.0, a.dtype)
    t = factor * a
    hi = t - (t - a)
    return hi, a - hi


def two_product(a, b):
    """``(p, e)`` with ``p = fl(a * b)`` and ``p + e = a * b`` exactly (no overflow)."""
    p = a * b
    a_hi, a_lo = _split(a)
    b_hi, b_lo = _split(b)
    return p, ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


def compensated_sum(terms, axis: int = -1):
    """Sum of ``terms`` along ``axis`` by a pairwise tree of :func:`two_sum`, with every
    rounding error carried along: about as accurate as summing in twice the precision."""
    s = jnp.moveaxis(terms, axis, -1)
    carry = jnp.zeros_like(s)
    while s.shape[-1] > 1:
        if s.shape[-1] % 2:
            pad = [(0, 0)] * (s.ndim - 1) + [(0, 1)]
            s, carry = jnp.pad(s, pad), jnp.pad(carry, pad)
        s, error = two_sum(s[..., 0::2], s[..., 1::2])
        carry = carry[..., 0::2] + carry[..., 1::2] + error
    return s[..., 0] + carry[..., 0]


def power_of_two(exponent, dtype):
    """``2.0 ** exponent`` exactly, for integer ``exponent`` in ``dtype``'s normal range
    (clipped to it). Built from the bits: XLA's ``exp2`` and ``ldexp`` (through ``pow``)
    are approximations on the CPU."""
    info = jnp.finfo(dtype)
    int_dtype = {16: jnp.int16, 32: jnp.int32, 64: jnp.int64}[info.bits]
    exponent = jnp.clip(jnp.asarray(exponent), info.minexp, info.maxexp - 1).astype(int_dtype)
    biased = exponent + jnp.asarray(1 - info.minexp, int_dtype)
    return jax.lax.bitcast_convert_type(biased << info.nmant, dtype)


def split_on_grid(W, num_terms: int):
    """``(W_hi, W_lo)``, ``W = W_hi + W_lo`` exactly, with ``W_hi`` on a grid so coarse
    that any sum of at most ``num_terms`` of its entries is exact in ``W``'s dtype (so a
    matrix product with a 0/1 matrix is exact), and ``|W_lo| <= grid / 2``."""
    info = jnp.finfo(W.dtype)
    # bound <= 2^e (frexp is exact); one more bit covers W_hi's rounding up.
    _, e = jnp.frexp(jnp.max(jnp.abs(W)) * num_terms)
    grid = power_of_two(e + 1 - (info.nmant + 1), W.dtype)
    W_hi = jnp.round(W / grid) * grid
    return W_hi, W - W_hi
