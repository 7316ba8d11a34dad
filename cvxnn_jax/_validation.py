"""Checks at the Python boundary, before any tracing, with messages naming the argument.

Value checks (NaN/inf, sign of lam, label set) need concrete values. When an argument
is a tracer (the caller jitted ``fit``), shape checks still run and the value checks are
left to the status of the solve (a non-finite solve reports ``nonfinite``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array


def is_concrete(x) -> bool:
    """True when ``x`` holds values (not a tracer inside jit/vmap/grad)."""
    return not isinstance(x, jax.core.Tracer)


def _as_float_array(x, name: str) -> Array:
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}")
    try:
        arr = jnp.asarray(x)
    except TypeError as err:
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}") from err
    if not (jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)
            or arr.dtype == jnp.bool_):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    elif jnp.finfo(arr.dtype).bits < 32:
        # float16 / bfloat16: the solvers' linear algebra (Cholesky, LAPACK) and their
        # certificates need at least float32.
        arr = arr.astype(jnp.float32)
    return arr


def _check_finite(arr: Array, name: str) -> None:
    if is_concrete(arr) and not bool(np.all(np.isfinite(np.asarray(arr)))):
        raise ValueError(f"{name} contains NaN or inf")


def check_data_matrix(X, name: str = "X") -> Array:
    """``X`` as a float ``(n, d)`` array with n, d >= 1 and finite entries."""
    X = _as_float_array(X, name)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (n, d), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {X.shape}; need at least one row and column")
    _check_finite(X, name)
    return X


def check_targets(y, n: int, dtype, *, binary_labels: bool, name: str = "y") -> Array:
    """``y`` as an ``(n,)`` array of ``dtype``; labels in {-1, +1} if ``binary_labels``."""
    y = _as_float_array(y, name)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(
            f"{name} must have shape (n,) = ({n},) (scalar output); got shape {y.shape}"
        )
    if y.shape[0] != n:
        raise ValueError(f"{name} has {y.shape[0]} rows but X has {n}: shape mismatch")
    _check_finite(y, name)
    if binary_labels and is_concrete(y):
        values = np.unique(np.asarray(y))
        if not set(values.tolist()) <= {-1.0, 1.0}:
            raise ValueError(
                f"{name} must hold labels in {{-1, +1}} for the logistic loss; found {values[:5]}"
            )
    return y.astype(dtype)


def check_key(key, name: str = "key") -> None:
    """``key`` is a ``jax.random`` key: a typed key (``jax.random.key``) or a raw
    ``uint32`` key array (``jax.random.PRNGKey``), not a seed."""
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return
    if dtype is None or dtype != np.uint32 or getattr(key, "ndim", 0) < 1:
        shown = repr(key) if isinstance(key, (int, float, np.number)) else type(key).__name__
        raise TypeError(f"{name} must be a jax.random key (jax.random.PRNGKey(seed) or "
                        f"jax.random.key(seed)), got {shown}")


def check_lam(lam, dtype, name: str = "lam") -> Array:
    """``lam`` as a scalar array of ``dtype``, finite and >= 0."""
    lam = _as_float_array(lam, name)
    if lam.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {lam.shape}")
    if is_concrete(lam):
        value = float(lam)
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    return lam.astype(dtype)


def check_positive_scalar(value, name: str, *, allow_zero: bool = False,
                          integer: bool = False) -> None:
    """A concrete number > 0 (or >= 0); a whole number if ``integer`` (a count such as
    ``max_steps`` would otherwise be truncated without a word)."""
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not is_concrete(value):
        return
    v = float(value)
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {bound}, got {v}")
    if integer and (isinstance(value, bool) or not v.is_integer()):
        raise TypeError(f"{name} must be a whole number, got {value!r}")
    if integer and v > np.iinfo(np.int32).max:
        # Counts are int32 inside the solvers' loops.
        raise ValueError(f"{name} must be at most 2**31 - 1, got {value!r}")


def check_gates(gates, d: int, dtype, name: str = "gates") -> Array:
    """User gates as a ``(d, P)`` array of ``dtype``."""
    gates = _as_float_array(gates, name)
    if gates.ndim != 2 or gates.shape[0] != d:
        raise ValueError(
            f"{name} must have shape (d, P) = ({d}, P) to match X; got shape {gates.shape}"
        )
    if gates.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {gates.shape}; need at least one gate")
    _check_finite(gates, name)
    return gates.astype(dtype)
