"""The cone-constrained ReLU program (DESIGN.md sections 2 and 4, item 2).

    min_{V,U}  L(sum_i c_i * X (v_i - u_i), y) + lam * sum_i (||v_i||_2 + ||u_i||_2)
    subject to  S_i X v_i >= 0,  S_i X u_i >= 0

with ``c_i = a + (1 - a) D_i`` for the activation ``sigma_a(t) = max(t, a t)``
(``a = 0`` ReLU, ``0 < a < 1`` leaky ReLU, ``a = -1`` absolute value) and
``S_i = 2 D_i - 1``. The weights are stored as one ``(d, 2P)`` array ``W = [V | U]``:
column ``j < P`` is ``v_j``, column ``P + j`` is ``u_j``. Everything the solvers need
comes from the single matmul ``X @ W`` (``(n, 2P)``): the predictions are
``sum(C * (X W), axis=1)`` with ``C = [c, -c]`` and the cone values are ``S2 * (X W)``
with ``S2 = [S, S]``.

Certificate (DESIGN.md section 2): given a dual direction ``rho`` (``(n,)``) and cone
multipliers ``gamma >= 0`` (``(n, 2P)``), the point ``s * (rho, gamma)`` with
``s = min(1, lam / max_j ||X^T (C_j rho + S2_j gamma_j)||)`` is dual feasible and
``-L*(-s rho)`` is a lower bound on the program's optimum. The upper bound is the
non-convex objective of the network recovered from ``W``: a real network, so it is
honest even while ``W`` violates the cones slightly. ``gap = upper - lower``.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from .._cones import Faces, empty_faces, project_cones
from .._losses import Loss
from .._prox import prox_group_l2, safe_norm
from .._solvers.newton import newton_polish
from ._base import CompositeProgram, dual_scale
from .gated_relu import group_lasso_certificate

_prox_columns = jax.vmap(prox_group_l2, in_axes=(1, None, None), out_axes=1)


def weighted_row_sums(C: Array, Z: Array) -> Array:
    """``sum(C * Z, axis=1)``, ``(n,)``: the predictions ``F W`` from ``Z = X W`` and the
    coefficients ``C`` (both ``(n, 2P)``).

    A product with a vector of ones, not ``jnp.sum``: XLA's CPU reduction along rows ran
    2-3x slower in float64 (n = 500 / 2000 / 10 000, 2P = 400, 2 cores, including
    ``X @ W``: 0.30 / 1.13 / 5.7 ms against 0.11 / 0.60 / 2.9 ms) and 1.5x slower in
    float32. Full precision, so a GPU's default TF32 product cannot round it.
    """
    ones = jnp.ones((C.shape[1],), jnp.result_type(C, Z))
    return jnp.matmul(C * Z, ones, precision=jax.lax.Precision.HIGHEST)


def activation(t: Array, slope) -> Array:
    """``max(t, slope * t)`` for ``slope <= 1``: ReLU (0), leaky ReLU, absolute value (-1)."""
    return jnp.maximum(t, slope * t)


class ReLUProgram(eqx.Module):
    """Data of one cone-constrained ReLU program; ``W = [V | U]`` has shape ``(d, 2P)``.

    **Fields:**
    - X: ``(n, d)`` data.
    - masks: ``(n, P)`` activation patterns (0.0 / 1.0).
    - y: ``(n,)`` targets.
    - lam: scalar regularisation strength.
    - loss: the :class:`~cvxnn_jax.Loss`.
    - slope: the activation's negative slope ``a`` (0 ReLU, -1 absolute value).
    """

    X: Array
    masks: Array
    y: Array
    lam: Array
    loss: Loss
    slope: float | Array = 0.0
    Xt: Array = eqx.field(repr=False, default=None)

    def __init__(self, X, masks, y, lam, loss: Loss, slope: float | Array = 0.0):
        self.X = X
        self.masks = masks
        self.y = y
        self.lam = lam
        self.loss = loss
        self.slope = slope
        # X^T held contiguous for transpose_times (derived from X here, so a solve built
        # from X inside a differentiated function sees one input).
        self.Xt = jnp.transpose(jnp.asarray(X))

    def transpose_times(self, B: Array) -> Array:
        """``X^T B``, shape ``(d, k)`` for ``B`` of shape ``(n, k)``.

        In float64 from the contiguous ``Xt``: XLA's CPU matmul contracting over the rows
        of the ``(n, d)`` ``X`` ran 2-2.7x slower (measured on 2 cores: 0.73 against 0.41 ms
        at n=2000, d=20, k=200; 3.7 against 1.8 ms at n=10000). In float32 the transposed
        ``X`` was as fast or faster (0.15 against 0.23 ms at n=2000, d=20), so it is kept.
        """
        if jnp.finfo(self.Xt.dtype).bits >= 64:
            return self.Xt @ B
        return self.X.T @ B

    # ------------------------------------------------------------ structure
    @property
    def num_patterns(self) -> int:
        return self.masks.shape[1]

    def coefficients(self) -> Array:
        """``C = [c, -c]``, ``(n, 2P)``: prediction weight of each column of ``X W``."""
        c = self.slope + (1.0 - self.slope) * self.masks
        return jnp.concatenate([c, -c], axis=1)

    def signs(self) -> Array:
        """``S2 = [S, S]``, ``(n, 2P)``: the cones are ``S2 * (X W) >= 0``."""
        s = 2.0 * self.masks - 1.0
        return jnp.concatenate([s, s], axis=1)

    def column_signs(self) -> Array:
        """``(2P,)``: +1 for the ``v`` columns, -1 for the ``u`` columns."""
        P = self.num_patterns
        return jnp.concatenate([jnp.ones(P, self.X.dtype), -jnp.ones(P, self.X.dtype)])

    def init_x(self) -> Array:
        return jnp.zeros((self.X.shape[1], 2 * self.num_patterns), self.X.dtype)

    # ------------------------------------------------------------ values
    def predict(self, W: Array) -> Array:
        """Predictions of the convex model, ``sum_i c_i X (v_i - u_i)``: ``(n,)``."""
        return weighted_row_sums(self.coefficients(), self.X @ W)

    def network_predict(self, W: Array) -> Array:
        """Predictions of the network recovered from ``W`` (activations, not masks)."""
        return activation(self.X @ W, self.slope) @ self.column_signs()

    def regulariser(self, W: Array) -> Array:
        return self.lam * jnp.sum(safe_norm(W, axis=0))

    def prox(self, W: Array, step) -> Array:
        return _prox_columns(W, self.lam, step)

    def objective(self, W: Array) -> Array:
        """Convex objective at ``W`` (cone constraints not checked)."""
        return self.loss.value(self.predict(W), self.y) + self.regulariser(W)

    def network_objective(self, W: Array) -> Array:
        """Non-convex objective of the network recovered from ``W``."""
        return self.loss.value(self.network_predict(W), self.y) + self.regulariser(W)

    def row_norm(self) -> Array:
        """``max_k ||x_k||``: the unit in which cone violations are reported."""
        return jnp.max(safe_norm(self.X, axis=1))

    def violation(self, W: Array) -> Array:
        """Largest cone violation ``max (-S2 * X W)_+`` divided by ``max_k ||x_k||``.

        In units of weight norm: a violation of ``t`` is undone by moving a neuron's
        weights a distance of at least ``t``.
        """
        worst = jnp.max(jnp.maximum(-self.signs() * (self.X @ W), 0.0))
        return worst / jnp.maximum(self.row_norm(), jnp.finfo(self.X.dtype).tiny)

    def certificate(self, W: Array, rho: Array, gamma: Array, At: Array | None = None):
        """``(gap, lower, upper)`` from a dual direction and cone multipliers.

        **Arguments:**
        - W: ``(d, 2P)`` weights.
        - rho: ``(n,)`` dual direction (``-grad L`` at the predictions).
        - gamma: ``(n, 2P)`` non-negative cone multipliers.
        - At: ``X^T (C rho + S2 gamma)`` if the caller has it (``(d, 2P)``).

        ``lower`` is a dual value (a lower bound on the optimum over these patterns),
        ``upper`` the recovered network's objective; ``gap = upper - lower``.
        """
        if At is None:
            At = self.transpose_times(self.coefficients() * rho[:, None] + self.signs() * gamma)
        max_norm = jnp.max(safe_norm(At, axis=0))
        lower = self.loss.dual(dual_scale(max_norm, self.lam) * rho, self.y)
        upper = self.network_objective(W)
        return upper - lower, lower, upper



class ProjectedReLUProgram(CompositeProgram):
    """The ReLU program as a composite program for FISTA: the cones live in the prox.

    ``min_W L(sum(C * X W, 1)) + sum_j (lam ||w_j|| + I_{K_j}(w_j))`` with
    ``K_j = {w : S2_j * (X w) >= 0}``. For a closed convex cone the prox of
    ``t lam ||.|| + I_K`` is the block soft-threshold of the projection onto ``K``,
    computed by :func:`~cvxnn_jax._cones.project_cones` (exact, warm-started from each
    column's cached face, carried in FISTA's ``prox_state``). Every iterate is feasible.

    Certificate: for ``w`` in ``K_j`` the dual constraint of column ``j`` is
    ``max_{w in K_j, ||w|| <= 1} <g_j, w> = ||Proj_{K_j}(g_j)|| <= lam`` with
    ``g_j = X^T (C_j rho)``, so ``rho`` is scaled by ``lam / max_j ||Proj_{K_j}(g_j)||``.
    The projection's norm is bounded from above even by an unfinished projection, so
    the lower bound is always valid; the upper bound is the recovered network's
    objective.
    """

    relu: ReLUProgram
    coefficients: Array  # C, (n, 2P)
    signs: Array  # S2, (n, 2P)

    @classmethod
    def build(cls, relu: ReLUProgram) -> "ProjectedReLUProgram":
        return cls(relu, relu.coefficients(), relu.signs())

    @property
    def y(self) -> Array:
        return self.relu.y

    @property
    def loss(self) -> Loss:
        return self.relu.loss

    def matvec(self, W):
        return weighted_row_sums(self.coefficients, self.relu.X @ W)

    def rmatvec(self, r):
        return self.relu.transpose_times(self.coefficients * r[:, None])

    def regulariser(self, W):
        return self.relu.regulariser(W)

    def init_x(self):
        return self.relu.init_x()

    def init_prox_state(self, W) -> Faces:
        return empty_faces(W.shape[0], W.shape[1], W.dtype)

    def prox_with_state(self, W, step, faces: Faces):
        threshold = step * self.relu.lam
        # ||Proj_K(w)|| <= ||w||: a column that the threshold zeroes needs no projection.
        W = jnp.where(safe_norm(W, axis=0) > threshold, W, 0.0)
        projected, faces, _ = project_cones(W, self.relu.X, self.signs, faces,
                                            bound_below=threshold)
        return _prox_columns(projected, self.relu.lam, step), faces

    def prox(self, W, step):
        return self.prox_with_state(W, step, self.init_prox_state(W))[0]

    can_polish = True

    def polish(self, W, max_newton, max_cg, tol):
        """Newton on the faces of ``W``'s cones (:class:`FaceProgram`).

        Newton's point may cross constraints that are inactive at ``W``; the step is
        then cut to the last feasible point of the segment (the slacks are linear in the
        step). The objective is convex along the segment and no higher at its end, so the
        result is feasible and never worse than ``W``.
        """
        faces = FaceProgram.build(self, W)
        U, products = newton_polish(faces, faces.coordinates(W), max_newton, max_cg, tol)
        step = faces.weights(U) - W
        slack = self.signs * (self.relu.X @ W)
        change = self.signs * (self.relu.X @ step)
        # Round-off on the faces' own rows is no crossing.
        ulps = 16.0 * jnp.finfo(W.dtype).eps * faces.row_norms[:, None] * (
            safe_norm(W, axis=0) + safe_norm(step, axis=0))
        crossing = slack + change < -ulps
        room = jnp.maximum(slack, 0.0)
        ratios = jnp.where(crossing, room / jnp.where(crossing, room - change, 1.0), 1.0)
        W_new = W + jnp.minimum(jnp.min(ratios), 1.0) * step
        keep = jnp.all(jnp.isfinite(W_new)) & (self.objective(W_new) <= self.objective(W))
        return jnp.where(keep, W_new, W), products

    def certificate(self, W, z, rho, At_rho):
        return self.certificate_with_state(W, z, rho, At_rho, self.init_prox_state(W))

    def certificate_with_state(self, W, z, rho, At_rho, faces: Faces):
        lam = self.relu.lam
        norms = safe_norm(At_rho, axis=0)
        # ||Proj(g)|| <= ||g||: columns already within lam cannot set the scale.
        large = norms > lam
        projected, _, _ = project_cones(jnp.where(large, At_rho, 0.0), self.relu.X,
                                        self.signs, faces, bound_below=lam)
        max_norm = jnp.max(jnp.where(large, safe_norm(projected, axis=0), norms))
        lower = self.relu.loss.dual(dual_scale(max_norm, lam) * rho, self.relu.y)
        upper = self.relu.network_objective(W)
        return upper - lower, lower


class FaceProgram(CompositeProgram):
    """The ReLU program restricted to the faces of its cones on which ``W`` lies.

    Column ``j``'s face is the subspace ``{w : x_i^T w = 0 for the rows i whose cone
    constraint is active at w_j}``; ``basis[j]`` (``(d, d)``) holds an orthonormal basis
    of it in its first columns and zeros after. In the coordinates ``U`` (``(d, 2P)``,
    ``w_j = basis[j] u_j``) the program is a plain column-group lasso, smooth on its
    support, which is what Newton polish (``_solvers/newton.py``) needs: ProjectedReLU
    FISTA identifies the faces long before its certificate settles, as it does the
    support for gated ReLU. The inactive constraints are not part of this program: the
    caller checks them on the polished point.
    """

    projected: ProjectedReLUProgram
    basis: Array  # (2P, d, d)
    row_norms: Array  # (n,)

    @classmethod
    def build(cls, projected: ProjectedReLUProgram, W: Array,
              active: Array | None = None) -> "FaceProgram":
        """The faces on which ``W`` lies, or those whose rows ``active`` (``(n, 2P)``
        boolean) names: the interior point, whose active slacks are small but not
        round-off, tells them apart by its multipliers."""
        X = projected.relu.X
        dtype = X.dtype
        row_norms = safe_norm(X, axis=1)
        if active is None:
            # A row is on the face when its slack is round-off: the cone projection puts
            # active rows at zero up to a few ulps of ||x_i|| ||w_j||.
            slack = projected.signs * (X @ W)
            scale = row_norms[:, None] * safe_norm(W, axis=0)[None, :]
            active = jnp.abs(slack) <= jnp.sqrt(jnp.finfo(dtype).eps) * scale
        active = active.astype(dtype)
        unit_rows = X / jnp.where(row_norms > 0, row_norms, 1.0)[:, None]
        gram = jnp.einsum("nj,nd,ne->jde", active, unit_rows, unit_rows)
        values, vectors = jnp.linalg.eigh(gram)
        null = values <= 1e3 * jnp.finfo(dtype).eps * jnp.maximum(values[:, -1:], 1.0)
        return cls(projected, vectors * null[:, None, :].astype(dtype), row_norms)

    @property
    def y(self) -> Array:
        return self.projected.y

    @property
    def loss(self) -> Loss:
        return self.projected.loss

    @property
    def lam(self) -> Array:
        return self.projected.relu.lam

    def coordinates(self, W: Array) -> Array:
        return jnp.einsum("jdk,dj->kj", self.basis, W)

    def weights(self, U: Array) -> Array:
        return jnp.einsum("jdk,kj->dj", self.basis, U)

    def matvec(self, U):
        return self.projected.matvec(self.weights(U))

    def rmatvec(self, r):
        return self.coordinates(self.projected.rmatvec(r))

    def regulariser(self, U):
        return self.lam * jnp.sum(safe_norm(U, axis=0))

    def prox(self, U, step):
        return _prox_columns(U, self.lam, step)

    def certificate(self, U, z, rho, At_rho):
        return group_lasso_certificate(self, U, z, rho, At_rho)

    def gram_diagonal(self, c):
        """Diagonal of ``A^T diag(c) A`` in face coordinates, ``(d, 2P)``."""
        X = self.projected.relu.X
        weighted = c[:, None] * self.projected.coefficients ** 2  # (n, 2P)
        gram = jnp.einsum("nj,nd,ne->jde", weighted, X, X)
        return jnp.einsum("jdk,jde,jek->kj", self.basis, gram, self.basis)

    def init_x(self):
        return self.projected.init_x()
