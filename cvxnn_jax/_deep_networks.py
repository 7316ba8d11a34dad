"""Equinox modules of the networks recovered from the Lasso programs of issue 5.

- :class:`DeepNarrowNetwork`: a sum of ``m`` parallel chains of scalar layers (deep
  narrow networks on 1-D data, Zeger et al. arXiv 2403.01046).
- :class:`ThresholdNetwork`: a two-layer network with threshold (or sign) units with
  trainable amplitudes (Ergen et al. ICLR 2023).
- :class:`DeepThresholdNetwork`: a stack of threshold layers.

Each is called on one example and returns a scalar; ``predict`` maps a batch. Each has
``weight_decay()``: the regulariser under which the network is equivalent to its convex
program, divided by ``lam``, so that
``cvxnn_jax.nonconvex_objective(net, X, y, lam)`` (``loss(net(X), y) + lam *
net.weight_decay()``) is the network's non-convex training objective.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ._networks import kept_units, one_example


@eqx.filter_jit
def _batched(network, X: Array) -> Array:
    """``network`` mapped over the leading axis of ``X`` (one compilation per shape)."""
    return jax.vmap(network)(X)


def _scalar_input(x: Array, dtype) -> Array:
    x = jnp.asarray(x, dtype)
    if x.ndim == 1 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 0:
        raise ValueError(f"a 1-D network takes one scalar input (shape () or (1,)), got shape {x.shape}")
    return x


class DeepNarrowNetwork(eqx.Module):
    """``f(x) = sum_j alpha_j h_j(x) + offset``, each unit a chain of scalar layers.

    Unit ``j`` computes ``h_0 = x``, ``h_l = act_l(W[j, l-1] h_{l-1} + B[j, l-1])`` for
    ``l = 1..L-1`` and outputs ``alpha_j h_{L-1}``: a network of depth ``L`` (``L - 1``
    hidden layers of width 1, in parallel; ``L = 2`` is the ordinary two-layer network).
    ``act_1`` is the chosen activation, deeper layers are ReLU.

    The regulariser (:meth:`weight_decay`, times ``lam``) is the paper's
    ``(lam / L) * (sum |W|^L + sum |alpha|^L)``; biases and ``offset`` are not
    penalised. For ``L = 2`` this is ordinary weight decay ``lam/2 (||W||^2 +
    ||alpha||^2)``. By rescaling and the AM-GM inequality its minimum over equivalent
    weights is ``lam * sum_j |alpha_j prod_l W[j, l]|``: the L1 norm of the Lasso.

    **Fields:**
    - W: ``(m, L - 1)`` layer weights.
    - B: ``(m, L - 1)`` layer biases.
    - alpha: ``(m,)`` output weights.
    - offset: scalar output bias.
    - activation: ``"relu"``, ``"leaky_relu"`` or ``"absolute"`` (first layer).
    - negative_slope: ``a`` in ``max(t, a t)`` for ``"leaky_relu"``.
    """

    W: Array
    B: Array
    alpha: Array
    offset: Array
    activation: str = eqx.field(static=True, default="relu")
    negative_slope: float = eqx.field(static=True, default=0.0)

    @property
    def depth(self) -> int:
        return self.W.shape[1] + 1

    def _act(self, l: int, t: Array) -> Array:
        if l > 0 or self.activation == "relu":
            return jax.nn.relu(t)
        if self.activation == "leaky_relu":
            return jnp.maximum(t, self.negative_slope * t)
        if self.activation == "absolute":
            return jnp.abs(t)
        raise ValueError(f"unknown activation {self.activation!r}")

    def hidden(self, x: Array) -> Array:
        """``(m,)`` outputs ``h_{L-1}`` of the units at one scalar input."""
        h = jnp.broadcast_to(_scalar_input(x, self.W.dtype), self.alpha.shape)
        for l in range(self.W.shape[1]):
            h = self._act(l, self.W[:, l] * h + self.B[:, l])
        return h

    def __call__(self, x: Array) -> Array:
        """Scalar output at one input ``x`` (shape ``()`` or ``(1,)``)."""
        return jnp.dot(self.alpha, self.hidden(x)) + self.offset

    def predict(self, x: Array) -> Array:
        """Outputs at ``x`` of shape ``(n,)`` or ``(n, 1)``: shape ``(n,)``."""
        x = jnp.asarray(x, self.W.dtype)
        return _batched(self, x.reshape(x.shape[0]))

    def weight_decay(self) -> Array:
        """``(1/L) (sum |W|^L + sum |alpha|^L)``: the regulariser divided by ``lam``."""
        L = self.depth
        return (jnp.sum(jnp.abs(self.W) ** L) + jnp.sum(jnp.abs(self.alpha) ** L)) / L

    @property
    def active(self) -> Array:
        """``(m,)`` boolean: units with a non-zero output weight."""
        return self.alpha != 0

    def pruned(self) -> "DeepNarrowNetwork":
        """The same function without its zero units (outside ``jit`` only)."""
        keep = kept_units(self)
        return DeepNarrowNetwork(self.W[keep], self.B[keep], self.alpha[keep], self.offset,
                                 self.activation, self.negative_slope)


def _step(t: Array, activation: str) -> Array:
    if activation == "threshold":
        return (t >= 0).astype(t.dtype)
    if activation == "sign":
        return jnp.where(t >= 0, 1.0, -1.0).astype(t.dtype)
    raise ValueError(f"activation must be 'threshold' or 'sign', got {activation!r}")


class ThresholdNetwork(eqx.Module):
    """``f(x) = sum_j alpha_j * s_j * step(x . g_j) + offset``.

    ``step(t) = 1[t >= 0]`` (``"threshold"``) or ``sign(t)`` with ``sign(0) = +1``
    (``"sign"``); ``s_j`` is the unit's trainable amplitude (Ergen et al. ICLR 2023).
    The regulariser (:meth:`weight_decay`, times ``lam``) is
    ``lam/2 (||s||^2 + ||alpha||^2)``: a step unit is invariant to positive scaling of
    its input weights, so weight decay on ``g`` could be driven to zero without changing
    the function and is left out. Its minimum over equivalent weights is
    ``lam * sum_j |s_j alpha_j|``, the Lasso's L1 norm.

    **Fields:**
    - gates: ``(d', m)`` input weights of the units (``d' = d + 1`` with ``bias``).
    - amplitudes: ``(m,)`` amplitudes ``s_j``.
    - alpha: ``(m,)`` output weights.
    - offset: scalar output bias (0 for the two-layer program of ``fit_threshold``,
      which has none; the unpenalised offset of ``fit_1d``).
    - activation: ``"threshold"`` or ``"sign"``.
    - bias: if True, ``x`` is augmented with a trailing 1.
    """

    gates: Array
    amplitudes: Array
    alpha: Array
    offset: Array
    activation: str = eqx.field(static=True, default="threshold")
    bias: bool = eqx.field(static=True, default=False)

    def __call__(self, x: Array) -> Array:
        """Scalar output at one example ``x`` of shape ``(d,)`` (``()`` when ``d = 1``)."""
        x = one_example(x, self.gates.shape[0] - self.bias, self.gates.dtype, self.bias)
        units = _step(x @ self.gates, self.activation)
        return jnp.sum(self.alpha * self.amplitudes * units) + self.offset

    def predict(self, X: Array) -> Array:
        """Outputs for a batch ``X`` of shape ``(n, d)`` (or ``(n,)`` when ``d = 1``)."""
        return _batched(self, jnp.asarray(X, self.gates.dtype))

    def weight_decay(self) -> Array:
        """``1/2 (||s||^2 + ||alpha||^2)``: the regulariser divided by ``lam``."""
        return 0.5 * (jnp.sum(self.amplitudes**2) + jnp.sum(self.alpha**2))

    @property
    def active(self) -> Array:
        return self.alpha != 0

    def pruned(self) -> "ThresholdNetwork":
        """The same function without its zero units (outside ``jit`` only)."""
        keep = kept_units(self)
        return ThresholdNetwork(self.gates[:, keep], self.amplitudes[keep], self.alpha[keep],
                                self.offset, self.activation, self.bias)


class DeepThresholdNetwork(eqx.Module):
    """A stack of threshold layers: ``h_0 = x``, ``h_l = s_l * 1[W_l^T h_{l-1} + b_l >= 0]``,
    ``f(x) = alpha . h_K``.

    The regulariser (:meth:`weight_decay`, times ``lam``) is ``lam/2 (||s_K||^2 +
    ||alpha||^2)`` on the last hidden layer's amplitudes and the output weights. The
    earlier layers' weights and amplitudes only feed threshold units, which are
    invariant to positive scaling of their inputs, so weight decay on them could be
    scaled to zero without changing the function; it is left out (the infimum).

    **Fields:**
    - weights: tuple of ``(d_{l-1}, d_l)`` weight matrices.
    - biases: tuple of ``(d_l,)`` biases.
    - amplitudes: tuple of ``(d_l,)`` amplitudes.
    - alpha: ``(d_K,)`` output weights.
    """

    weights: tuple
    biases: tuple
    amplitudes: tuple
    alpha: Array

    def __call__(self, x: Array) -> Array:
        """Scalar output at one example ``x`` of shape ``(d,)``."""
        h = one_example(x, self.weights[0].shape[0], self.alpha.dtype)
        for W, b, s in zip(self.weights, self.biases, self.amplitudes):
            h = s * (h @ W + b >= 0).astype(h.dtype)
        return jnp.dot(self.alpha, h)

    def predict(self, X: Array) -> Array:
        """Outputs for a batch ``X`` of shape ``(n, d)``: shape ``(n,)``."""
        return _batched(self, jnp.asarray(X, self.alpha.dtype))

    def weight_decay(self) -> Array:
        """``1/2 (||s_K||^2 + ||alpha||^2)``: the regulariser divided by ``lam``."""
        return 0.5 * (jnp.sum(self.amplitudes[-1] ** 2) + jnp.sum(self.alpha**2))
