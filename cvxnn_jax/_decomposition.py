"""Cone decomposition: a ReLU solution with the predictions of a gated-ReLU one.

Mishkin, Sahiner & Pilanci (ICML 2022) show that a gated-ReLU solution maps to a
feasible point of the cone-constrained ReLU program with the same predictions, by
writing each ``w_i = v_i - u_i`` with ``v_i, u_i`` in the cone
``K_i = {x : S_i X x >= 0}``. The gate ``g_i`` itself lies in ``K_i`` (strictly, when
no data point is on its hyperplane), which gives a closed form: ``u_i = t_i g_i`` and
``v_i = w_i + t_i g_i`` with the smallest ``t_i >= 0`` that puts ``v_i`` in the cone.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from ._precision import full_precision


@full_precision
def cone_decomposition(X: ArrayLike, gates: ArrayLike, weights: ArrayLike) -> Array:
    """ReLU weights ``[V | U]`` with ``v_i - u_i = w_i`` and ``v_i, u_i`` in their cones.

    **Arguments:**
    - X: ``(n, d)`` data (with the bias column if the model has one).
    - gates: ``(d, P)`` gates of the patterns.
    - weights: ``(d, P)`` gated-ReLU weights (``fit(..., model="gated_relu").weights``).

    **Returns:** ``(d, 2P)`` weights of the ReLU program (``ReLUProgram`` layout), whose
    predictions ``sum_i D_i X (v_i - u_i)`` equal the gated model's exactly. The
    regulariser may grow (``||v_i|| + ||u_i|| >= ||w_i||``). Raises (through
    ``equinox.error_if``) if a gate has a data point on its hyperplane where ``w_i``
    needs to be moved, since ``g_i`` is then not interior to the cone.
    """
    X, gates, W = jnp.asarray(X), jnp.asarray(gates), jnp.asarray(weights)
    if gates.shape != W.shape or gates.shape[0] != X.shape[1]:
        raise ValueError(f"gates {gates.shape} and weights {W.shape} must both be (d, P) with "
                         f"d = X.shape[1] = {X.shape[1]}")
    signs = jnp.where(X @ gates >= 0, 1.0, -1.0).astype(X.dtype)
    gate_values = signs * (X @ gates)  # >= 0; > 0 where no point is on the hyperplane
    shortfall = jnp.maximum(-signs * (X @ W), 0.0)
    bad = jnp.any((shortfall > 0) & (gate_values <= 0))
    needed = jnp.where(shortfall > 0, shortfall / jnp.where(gate_values > 0, gate_values, 1.0), 0.0)
    t = jnp.max(needed, axis=0)
    U = t * gates
    V = W + U
    return eqx.error_if(
        jnp.concatenate([V, U], axis=1), bad,
        "cone_decomposition: a gate has a data point on its hyperplane where the weights "
        "violate the cone; pass gates with no data point on their hyperplanes",
    )
