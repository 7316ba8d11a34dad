"""Equinox modules of the networks recovered from convex solutions.

Recovered networks keep one hidden unit per pattern of the convex program, so that
recovery works inside ``jit`` (fixed shapes); units of a zero group have zero weights
and contribute nothing. :meth:`pruned` drops them outside ``jit``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ._precision import full_precision
from ._losses import LogisticLoss, Loss, get_loss
from ._prox import safe_norm
from ._validation import check_lam, check_targets, is_concrete


def one_example(x, num_features: int, dtype, bias: bool = False) -> Array:
    """``x`` as one example, shape ``(num_features,)`` (a scalar too when
    ``num_features = 1``), in ``dtype``, with a trailing 1 appended when ``bias``.

    A network is called on one example. A batch ``(n, d)`` would broadcast through its
    products and come back summed into one number, so any other shape is a ValueError
    that names ``x`` (a static check: it holds under ``jit`` and ``vmap``).
    """
    x = jnp.asarray(x, dtype)
    if x.ndim == 0 and num_features == 1:
        x = x[None]
    if x.shape != (num_features,):
        hint = ("; for a batch use network.predict(X) or jax.vmap(network)"
                if x.ndim == 2 and x.shape[-1] == num_features else "")
        raise ValueError(f"x must be one example of shape ({num_features},), got shape "
                         f"{x.shape}{hint}")
    return jnp.concatenate([x, jnp.ones((1,), x.dtype)]) if bias else x


def kept_units(network) -> np.ndarray:
    """The ``(m,)`` boolean mask of ``network.active`` as a NumPy array, for ``pruned``.
    Pruning changes the network's shapes, which a traced network cannot do: say so
    instead of a tracer-conversion error."""
    if not is_concrete(network.active):
        raise TypeError(f"{type(network).__name__}.pruned() changes the number of units, so "
                        "it cannot run under jax.jit, vmap or grad: call it outside them")
    return np.asarray(network.active)


class _TwoLayerNetwork(eqx.Module):
    """What every recovered two-layer network shares.

    Subclasses declare the fields ``W1`` (``(d', m)``) and ``w2`` (``(m,)``) themselves,
    so that each keeps its own positional field order.
    """

    @property
    def num_features(self) -> int:
        """``d``, the features of one example (without the bias column)."""
        self.check_single()
        return self.W1.shape[0] - self.bias

    def check_single(self) -> None:
        """A ValueError if this holds a stack of networks (``fit_path``'s, one per
        lambda): its calls would read the stack's axis as the features."""
        if self.W1.ndim != 2:
            raise ValueError(
                f"this {type(self).__name__} holds {self.W1.shape[0]} networks along a "
                "leading axis (a path's solution, one per lambda): take one with "
                "jax.tree.map(lambda a: a[i], network), or jax.vmap over them")

    def predict(self, X: Array) -> Array:
        """Predictions for a batch ``X`` of shape ``(n, d)``: shape ``(n,)``."""
        d = self.num_features
        X = jnp.asarray(X)
        if X.ndim != 2 and not (X.ndim == 1 and d == 1):
            raise ValueError(f"X must be a batch of shape (n, {d}) for predict, got shape "
                             f"{X.shape}; call network(x) for one example")
        return jax.vmap(self)(X)

    def weight_decay(self) -> Array:
        """``1/2 (||W1||_F^2 + ||w2||^2)``: the non-convex regulariser divided by lam."""
        return 0.5 * (jnp.sum(self.W1**2) + jnp.sum(self.w2**2))

    @property
    def active(self) -> Array:
        """``(m,)`` boolean: units with a non-zero output weight."""
        return self.w2 != 0


class GatedReLUNetwork(_TwoLayerNetwork):
    """Two-layer gated-ReLU network: ``f(x) = sum_j 1[x.g_j >= 0] (x.W1_j) w2_j``.

    **Fields:**
    - gates: ``(d', m)`` fixed gate vectors (not trained, not regularised).
    - W1: ``(d', m)`` first-layer weights.
    - w2: ``(m,)`` second-layer weights.
    - bias: if True, ``x`` is augmented with a trailing 1 (so ``d' = d + 1``).

    Call on one example ``x`` of shape ``(d,)``; returns a scalar. ``jax.vmap`` it (or
    use :meth:`predict`) for a batch.
    """

    gates: Array
    W1: Array
    w2: Array
    bias: bool = eqx.field(static=True, default=False)

    def __call__(self, x: Array) -> Array:
        x = one_example(x, self.num_features, self.W1.dtype, self.bias)
        active = (x @ self.gates >= 0).astype(x.dtype)
        return jnp.sum(active * (x @ self.W1) * self.w2)

    def pruned(self) -> "GatedReLUNetwork":
        """The same function with zero units removed (outside ``jit`` only)."""
        keep = kept_units(self)
        return GatedReLUNetwork(self.gates[:, keep], self.W1[:, keep], self.w2[keep], self.bias)


class ReLUNetwork(_TwoLayerNetwork):
    """Two-layer network ``f(x) = sum_j sigma(x . W1_j) w2_j``, ``sigma(t) = max(t, a t)``.

    **Fields:**
    - W1: ``(d', m)`` first-layer weights.
    - w2: ``(m,)`` second-layer weights.
    - slope: the activation's negative slope ``a`` (0 ReLU, in (0, 1) leaky ReLU,
      -1 absolute value).
    - bias: if True, ``x`` is augmented with a trailing 1 (so ``d' = d + 1``).

    Call on one example ``x`` of shape ``(d,)``; returns a scalar.
    """

    W1: Array
    w2: Array
    slope: float = eqx.field(static=True, default=0.0)
    bias: bool = eqx.field(static=True, default=False)

    def __call__(self, x: Array) -> Array:
        x = one_example(x, self.num_features, self.W1.dtype, self.bias)
        t = x @ self.W1
        return jnp.sum(jnp.maximum(t, self.slope * t) * self.w2)

    def pruned(self) -> "ReLUNetwork":
        """The same function with zero units removed (outside ``jit`` only)."""
        keep = kept_units(self)
        return ReLUNetwork(self.W1[:, keep], self.w2[keep], self.slope, self.bias)


def split_group(w: Array) -> tuple[Array, Array]:
    """Neuron weights from a convex group ``w``: ``(w / sqrt||w||, sqrt||w||)`` (0 at 0)."""
    norm = safe_norm(w, axis=0)
    root = jnp.sqrt(norm)
    return w / jnp.where(root > 0, root, 1.0), root


def relu_network(W, slope: float, bias: bool) -> ReLUNetwork:
    """The ReLU network of convex weights ``W = [V | U]`` (``(d, 2P)``, DESIGN.md section 2)."""
    W1, root = split_group(W)
    P = W.shape[1] // 2
    signs = jnp.concatenate([jnp.ones(P, W.dtype), -jnp.ones(P, W.dtype)])
    return ReLUNetwork(W1=W1, w2=root * signs, slope=slope, bias=bias)


@full_precision
def nonconvex_objective(network, X, y, lam, loss: str | Loss = "squared") -> Array:
    """The non-convex training objective of a two-layer network.

    ``L(network(X), y) + (lam / 2) * (||W1||_F^2 + ||w2||^2)``, scaled as DESIGN.md
    section 2 says.

    **Arguments:**
    - network: a recovered network (for example ``fit(...).network``).
    - X: ``(n, d)`` data (without the bias column: the network adds it).
    - y: ``(n,)`` targets.
    - lam: scalar weight decay.
    - loss: ``"squared"``, ``"logistic"`` or a :class:`Loss`.
    """
    X = jnp.asarray(X)
    if X.ndim == 0 or X.shape[0] == 0:
        raise ValueError(f"X must hold at least one example along its first axis, got shape "
                         f"{X.shape}")
    # Checked before the network runs, in X's float type; cast to the predictions' below.
    dtype = jnp.result_type(X.dtype, jnp.float32)
    loss = get_loss(loss)
    y = check_targets(y, X.shape[0], dtype, binary_labels=isinstance(loss, LogisticLoss))
    lam = check_lam(lam, dtype)
    predictions = jax.vmap(network)(X)
    return loss.value(predictions, y.astype(predictions.dtype)) + lam * (
        network.weight_decay())
