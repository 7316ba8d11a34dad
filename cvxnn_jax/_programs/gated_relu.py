"""The gated-ReLU convex program (DESIGN.md section 2).

    min_W  L(sum_i D_i X w_i, y) + lam * sum_i ||w_i||_2

with ``W`` of shape ``(d, P)`` (column ``i`` is ``w_i``) and ``D_i = diag(masks[:, i])``.
``A W = sum_i D_i X w_i`` costs one ``(n, P) x (P, d)`` matmul; ``A^T r`` another.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from .._losses import Loss, SquaredLoss
from .._precision import compensated_sum, split_on_grid, two_product
from .._prox import prox_group_l2, prox_group_l2_increment, safe_norm
from .._solvers.newton import newton_polish
from ._base import CompositeProgram, dual_scale

def padded_rows(d: int) -> int:
    """Rows of ``W`` (``d`` of them) after :meth:`GatedReLUProgram.masks_product` pads it:
    the next multiple of 16."""
    return d + (-d % 16)


_prox_columns = jax.vmap(prox_group_l2, in_axes=(1, None, None), out_axes=1)
_prox_increment_columns = jax.vmap(prox_group_l2_increment, in_axes=(1, 1, 1, None, None),
                                   out_axes=(1, 0))


def group_lasso_certificate(program, W: Array, z: Array, rho: Array, At_rho: Array):
    """Gap and dual value of a column-group lasso from the dual direction ``rho``.

    ``rho`` is scaled by ``s = min(1, lam / max_i ||(A^T rho)_i||)`` to dual
    feasibility. The gap is the sum of two non-negative parts, each computed without
    cancellation: the loss's Fenchel-Young gap at ``(z, s rho)`` and, per group,
    ``lam ||w_i|| - s <(A^T rho)_i, w_i>``.
    """
    lam = program.lam
    col_norms = safe_norm(At_rho, axis=0)
    max_norm = jnp.max(col_norms)
    scale = dual_scale(max_norm, lam)
    scaled = scale * rho
    group_terms = lam * safe_norm(W, axis=0) - scale * jnp.sum(At_rho * W, axis=0)
    gap = program.loss.fenchel_young(z, scaled, program.loss_target()) + jnp.sum(
        jnp.maximum(group_terms, 0.0)
    )
    return gap, program.loss.dual(scaled, program.y)


class GatedReLUProgram(CompositeProgram):
    """Data of one gated-ReLU convex program.

    **Arguments:**
    - X: ``(n, d)`` data (held as its transpose ``Xt``; ``X`` is a property).
    - masks: ``(n, P)`` activation patterns (0.0 / 1.0) of the gates.
    - y: ``(n,)`` targets.
    - lam: scalar regularisation strength (a JAX array, so one compile serves all).
    - loss: the :class:`~cvxnn_jax.Loss`.
    - residual: solvers track the residual ``A W - y`` (squared loss only; see
      :meth:`forward`). ``fit`` turns it on below float64.
    - compensated: FISTA holds ``W`` in two words (:meth:`prox_increment`). ``fit``
      turns it on below float64.
    """

    Xt: Array
    masks: Array
    y: Array
    lam: Array
    loss: Loss
    residual: bool = eqx.field(static=True, default=False)
    compensated: bool = eqx.field(static=True, default=False)

    def __init__(self, X, masks, y, lam, loss: Loss, residual: bool = False,
                 compensated: bool = False):
        # The program holds X^T, (d, n) and contiguous, and no X: XLA's CPU matmul
        # contracting over the rows of an (n, d) operand (A^T r = (X^T * r) masks) ran
        # 2x slower in float64 (measured on 2 cores at n=1000..10000, d=20..50,
        # P=200..1000: 2.6-2.8 ms against 0.9-1.3 ms per A^T r at n=1000, d=50,
        # P=1000). One array, so gradients with respect to the program's data are whole.
        self.Xt = jnp.transpose(jnp.asarray(X))
        self.masks = masks
        self.y = y
        self.lam = lam
        self.loss = loss
        self.residual = residual
        self.compensated = compensated

    @property
    def X(self) -> Array:
        """The ``(n, d)`` data (a transposed view of ``Xt``)."""
        return jnp.transpose(self.Xt)

    @classmethod
    def build(cls, X, masks, y, lam, loss: Loss) -> "GatedReLUProgram":
        """The program ``fit`` solves: below float64, residual coordinates (squared loss)
        and two-word iterates, without which float32 stalls on close fits (measured at
        n=1000, d=50, P=1000, lam=1e-3: 34 234 steps to a certified 1e-4, 6 240 with both)."""
        below_float64 = jnp.finfo(X.dtype).bits < 64
        return cls(X=X, masks=masks, y=y, lam=lam, loss=loss,
                   residual=below_float64 and isinstance(loss, SquaredLoss),
                   compensated=below_float64)

    def __check_init__(self):
        if self.residual and not isinstance(self.loss, SquaredLoss):
            raise ValueError("residual=True needs the squared loss, got "
                             f"{type(self.loss).__name__}")

    # Both products go through the masks as a matrix, never through an (n, P)
    # intermediate: sum_i D_i X w_i = rowsum(X * (masks @ W^T)) and
    # A^T r = (X^T * r) masks. The (n, P) products ``X @ W`` and ``masks * r`` cost as
    # many FLOPs but write and re-read n * P numbers; measured 1.4-2.6x slower per
    # matvec on a 2-core CPU (n=1000..5000, d=20..50, P=200..1000).
    def masks_product(self, W):
        """``masks @ W^T``, shape ``(n, d)`` for ``W`` of shape ``(d, P)``.

        ``W`` is padded with zero rows to a multiple of 16: XLA's CPU matmul with an
        output of ``d`` columns ran up to 1.7x faster that way when ``d`` is not a
        multiple of 16 (measured on 2 cores, float32 and float64: n=1000, P=1000, d=50:
        0.85 -> 0.53 ms in float32, 1.20 -> 0.98 ms in float64; n=3000, P=250, d=25 and
        n=2000, P=500, d=10 alike; d=40 -> 48 within 3%).
        """
        d = W.shape[0]
        padding = padded_rows(d) - d
        if padding:
            return (self.masks @ jnp.pad(W, ((0, padding), (0, 0))).T)[:, :d]
        return self.masks @ W.T

    def matvec(self, W):
        return jnp.sum(self.X * self.masks_product(W), axis=1)

    def rmatvec(self, r):
        return (self.Xt * r) @ self.masks

    def forward(self, W):
        """``A W`` (shape ``(n,)``, ``W`` of shape ``(d, P)``), or in residual coordinates
        ``A W - y`` accurate to about the working precision of the residual itself, not
        of ``A W``: ``masks @ W^T`` is split into a
        part computed exactly (``W`` on a coarse grid) and a small remainder, and the
        products with ``X`` and the row sums minus ``y`` are error-free transformations
        (``_precision.py``). About 2.5 matvecs of work; solvers call it only to refresh
        ``z`` (every ``check_every`` steps). Measured (n=1000, d=50, P=1000, float32, the
        float64 optimum rounded): largest residual error 1.1e-9 against 2.3e-6 for
        ``matvec(W) - y``, with residuals up to 2.6e-2 and ``|y|`` up to 25.6.
        """
        if not self.residual:
            return self.matvec(W)
        W_hi, W_lo = split_on_grid(W, self.masks.shape[1])
        exact, error = two_product(self.X, self.masks_product(W_hi))
        terms = jnp.concatenate([exact, -self.y[:, None]], axis=1)
        small = jnp.sum(error + self.X * self.masks_product(W_lo), axis=1)
        return compensated_sum(terms, axis=1) + small

    def regulariser(self, W):
        return self.lam * jnp.sum(safe_norm(W, axis=0))

    def prox(self, W, step):
        return _prox_columns(W, self.lam, step)

    def prox_increment(self, W_hi, W_lo, move, step):
        increment, zero = _prox_increment_columns(W_hi, W_lo, move, self.lam, step)
        return increment, jnp.broadcast_to(zero, W_hi.shape)

    def certificate(self, W, z, rho, At_rho):
        return group_lasso_certificate(self, W, z, rho, At_rho)

    can_polish = True

    def polish(self, W, max_newton, max_cg, tol):
        return newton_polish(self, W, max_newton, max_cg, tol)

    def gram_diagonal(self, c):
        """Diagonal of ``A^T diag(c) A`` as a ``(d, P)`` array: ``(c X^2)^T masks``."""
        return (self.Xt * self.Xt * c) @ self.masks

    def init_x(self):
        return jnp.zeros((self.X.shape[1], self.masks.shape[1]), self.X.dtype)
