"""The Lasso over an explicit dictionary: ``min_z L(A z, y) + lam ||z||_1``.

Used by the 1-D deep and threshold programs (their dictionaries are the features of
every unit).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from .._losses import Loss
from .._prox import prox_l1
from ._base import CompositeProgram
from .gated_relu import group_lasso_certificate


class LassoProgram(CompositeProgram):
    """``min_z loss(A z, y) + lam ||z||_1`` over an explicit dictionary.

    ``z`` is stored as a ``(1, p)`` row so that the column-group certificate of the
    gated-ReLU program applies unchanged (a group of one coefficient is an L1 term).

    **Fields:**
    - A: ``(n, p)`` dictionary.
    - y: ``(n,)`` targets.
    - lam: scalar regularisation strength (a JAX array).
    - loss: the :class:`~cvxnn_jax.Loss`.
    """

    A: Array
    y: Array
    lam: Array
    loss: Loss

    def matvec(self, Z):
        return self.A @ Z[0]

    def rmatvec(self, r):
        return (self.A.T @ r)[None, :]

    def regulariser(self, Z):
        return self.lam * jnp.sum(jnp.abs(Z))

    def prox(self, Z, step):
        return prox_l1(Z, self.lam, step)

    def certificate(self, Z, z, rho, At_rho):
        return group_lasso_certificate(self, Z, z, rho, At_rho)

    def init_x(self):
        return jnp.zeros((1, self.A.shape[1]), self.A.dtype)
