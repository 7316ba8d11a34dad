"""A convex solve as a layer: fit on the features it receives, predict, differentiate."""

from __future__ import annotations

import equinox as eqx
import jax
from jax import Array

from ._implicit import differentiable_fit
from ._patterns import add_bias_column, sample_gates
from ._solution import Solution


class ConvexLayer(eqx.Module):
    """A two-layer network trained to global optimality inside the forward pass.

    Called on training features ``F`` (``(n, d)``, e.g. the output of a feature extractor)
    and targets ``y``, the layer solves the convex program on ``(F, y)`` and returns the
    fitted network's predictions, on ``F`` or on other ``queries``. The solve is
    differentiated implicitly (:func:`cvxnn_jax.differentiable_fit`), so a loss of the
    predictions has gradients with respect to ``F`` (and through it the extractor's
    parameters) and to ``lam`` when it is an array: a model below it can be trained end
    to end with ``optax``::

        layer = cn.ConvexLayer.from_features(key, extractor(X_train), num_gates=16, lam=1e-2)

        def loss(extractor):
            predictions = layer(extractor(X_train), y_train, extractor(X_val))
            return jnp.mean((predictions - y_val) ** 2)

    **Fields:**
    - gates: ``(d', P)`` gates in feature space (``d' = d + 1`` with ``bias``). Held fixed:
      no gradient flows to them (the masks they induce are piecewise constant).
    - lam: regularisation strength: a float (fixed) or a scalar array (a leaf that an
      optimiser may train; keep it positive, e.g. store it as ``exp`` of a parameter).
    - model, loss, tol, max_steps, bias, adjoint: as :func:`cvxnn_jax.differentiable_fit`.
    """

    gates: Array
    lam: float | Array
    model: str = eqx.field(static=True, default="gated_relu")
    loss: str = eqx.field(static=True, default="squared")
    tol: float = eqx.field(static=True, default=1e-9)
    max_steps: int | None = eqx.field(static=True, default=None)
    bias: bool = eqx.field(static=True, default=True)
    adjoint: str = eqx.field(static=True, default="auto")

    @classmethod
    def from_features(cls, key, features, num_gates: int, lam, **options) -> "ConvexLayer":
        """A layer with ``num_gates`` Gaussian gates whose patterns on ``features`` are
        distinct (:func:`cvxnn_jax.sample_gates`; the bias column is appended first when
        ``bias`` is True, the default)."""
        bias = options.get("bias", True)
        sampled_on = add_bias_column(features) if bias else features
        return cls(gates=sample_gates(key, sampled_on, num_gates), lam=lam, **options)

    def fit(self, features, y) -> Solution:
        """The differentiable solution on ``(features, y)`` (``(n, d)``, ``(n,)``)."""
        return differentiable_fit(features, y, self.lam, gates=jax.lax.stop_gradient(self.gates),
                                  model=self.model, loss=self.loss, tol=self.tol,
                                  max_steps=self.max_steps, bias=self.bias,
                                  adjoint=self.adjoint)

    def __call__(self, features, y, queries=None) -> Array:
        """Fit on ``(features, y)``; predictions on ``queries`` (``(m, d)``, default
        ``features``): shape ``(m,)``."""
        network = self.fit(features, y).network
        return network.predict(features if queries is None else queries)
