"""Losses on predictions, with gradient, Bregman divergence and conjugate.

Scaling follows DESIGN.md section 2 (the same as scikit-learn's Lasso):

- squared: ``L(z) = 1/(2n) ||z - y||^2``
- logistic (labels in {-1, +1}): ``L(z) = 1/n sum_k log(1 + exp(-y_k z_k))``

Duality convention: the dual variable is ``rho = -grad L(z)`` (shape ``(n,)``) and the
dual objective of a program ``min L(A w) + R(w)`` is ``-L*(-rho)`` subject to
``R*(A^T rho) <= 0``; :meth:`Loss.dual` returns ``-L*(-rho)`` (``-inf`` outside its
domain). The duality gap is assembled from :meth:`Loss.fenchel_young`, which is
non-negative term by term and so free of the cancellation that ``primal - dual``
suffers in float32.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array


class Loss(eqx.Module):
    """A smooth convex loss ``L(z)`` of the predictions ``z`` (shape ``(n,)``)."""

    @abc.abstractmethod
    def value(self, z: Array, y: Array) -> Array:
        """Scalar loss at predictions ``z``."""

    @abc.abstractmethod
    def grad(self, z: Array, y: Array) -> Array:
        """Gradient with respect to ``z``, shape ``(n,)``."""

    @abc.abstractmethod
    def bregman(self, z_new: Array, z_old: Array, y: Array) -> Array:
        """``L(z_new) - L(z_old) - <grad L(z_old), z_new - z_old>``, computed per sample.

        Computed without subtracting two full loss values, so that a line search
        comparing it with ``||d||^2 / (2 t)`` stays meaningful near the optimum even in
        float32 (DESIGN.md section 2, "Float32 hazard").
        """

    @abc.abstractmethod
    def dual(self, rho: Array, y: Array) -> Array:
        """``-L*(-rho)``; ``-inf`` where ``rho`` lies outside the conjugate's domain."""

    @abc.abstractmethod
    def fenchel_young(self, z: Array, rho: Array, y: Array) -> Array:
        """``L(z) - dual(rho) + <rho, z>`` (>= 0; zero iff ``rho = -grad L(z)``)."""

    @abc.abstractmethod
    def smoothness(self, n: int) -> float:
        """Lipschitz constant of ``grad L`` (with respect to ``z``)."""

    @abc.abstractmethod
    def prox(self, w: Array, step: Array, y: Array) -> Array:
        """``argmin_z L(z) + ||z - w||^2 / (2 step)``, shape ``(n,)``."""

    def curvature(self, z: Array, y: Array) -> Array:
        """Diagonal of the Hessian with respect to ``z``, shape ``(n,)``.

        The losses are separable (one term per sample), so the Hessian is diagonal; this
        default differentiates :meth:`grad` along the all-ones direction.
        """
        return jax.jvp(lambda u: self.grad(u, y), (z,), (jnp.ones_like(z),))[1]


class SquaredLoss(Loss):
    """``L(z) = 1/(2n) ||z - y||^2``."""

    def value(self, z, y):
        r = z - y
        return 0.5 * jnp.sum(r * r) / z.shape[0]

    def grad(self, z, y):
        return (z - y) / z.shape[0]

    def bregman(self, z_new, z_old, y):
        d = z_new - z_old
        return 0.5 * jnp.sum(d * d) / z_new.shape[0]

    def dual(self, rho, y):
        n = rho.shape[0]
        return jnp.dot(rho, y) - 0.5 * n * jnp.sum(rho * rho)

    def fenchel_young(self, z, rho, y):
        n = z.shape[0]
        r = z - y + n * rho
        return 0.5 * jnp.sum(r * r) / n

    def smoothness(self, n):
        return 1.0 / n

    def curvature(self, z, y):
        return jnp.full_like(z, 1.0 / z.shape[0])

    def prox(self, w, step, y):
        t = step / w.shape[0]
        return (w + t * y) / (1.0 + t)


def _xlogx(p):
    return jax.scipy.special.xlogy(p, p)


class LogisticLoss(Loss):
    """``L(z) = 1/n sum_k log(1 + exp(-y_k z_k))`` for labels ``y_k`` in {-1, +1}.

    ``fit`` checks the labels before tracing; under a caller's ``jit`` it cannot, so
    the conjugate is written for any non-zero ``y_k`` (the loss of the margin
    ``y_k z_k``): the certificate stays a true bound instead of assuming ``y_k^2 = 1``.
    A zero label puts every dual point outside the domain (gap ``inf``: never
    "converged"). ``smoothness`` still assumes ``|y_k| <= 1``.
    """

    def value(self, z, y):
        return jnp.mean(jnp.logaddexp(0.0, -y * z))

    def grad(self, z, y):
        return -y * jax.nn.sigmoid(-y * z) / z.shape[0]

    def bregman(self, z_new, z_old, y):
        t_old = y * z_old
        delta = y * (z_new - z_old)
        direct = (
            jnp.logaddexp(0.0, -(t_old + delta))
            - jnp.logaddexp(0.0, -t_old)
            + jax.nn.sigmoid(-t_old) * delta
        )
        # For small steps the direct formula cancels; use the third-order Taylor
        # expansion of l(t) = log(1 + e^-t) there. The switch point eps**(1/4) makes
        # both errors below machine precision relative to delta^2.
        s = jax.nn.sigmoid(t_old)
        l2 = s * (1.0 - s)
        l3 = l2 * (1.0 - 2.0 * s)
        taylor = 0.5 * l2 * delta**2 - l3 * delta**3 / 6.0
        small = jnp.abs(delta) < jnp.finfo(z_new.dtype).eps ** 0.25
        return jnp.sum(jnp.where(small, taylor, direct)) / z_new.shape[0]

    def dual(self, rho, y):
        n = rho.shape[0]
        p = n * rho / y  # at rho = -grad L(z), p = sigmoid(-y z) lies in [0, 1]
        inside = jnp.all((p >= 0.0) & (p <= 1.0))
        p = jnp.clip(p, 0.0, 1.0)
        value = -jnp.sum(_xlogx(p) + _xlogx(1.0 - p)) / n
        return jnp.where(inside, value, -jnp.inf)

    def fenchel_young(self, z, rho, y):
        n = z.shape[0]
        t = y * z
        p = n * rho / y
        inside = jnp.all((p >= 0.0) & (p <= 1.0))
        p = jnp.clip(p, 0.0, 1.0)
        # Per sample: l(t) + l*(-p) - p t >= 0, with l(t) = log(1 + e^-t).
        per_sample = jnp.logaddexp(0.0, -t) + _xlogx(p) + _xlogx(1.0 - p) + p * t
        return jnp.where(inside, jnp.sum(jnp.maximum(per_sample, 0.0)) / n, jnp.inf)

    def smoothness(self, n):
        return 0.25 / n

    def curvature(self, z, y):
        margin = y * z
        return y * y * jax.nn.sigmoid(margin) * jax.nn.sigmoid(-margin) / z.shape[0]

    def prox(self, w, step, y, newton_steps: int = 30):
        # Separable and strongly convex (curvature >= 1/step): Newton per sample from w.
        t = step / w.shape[0]

        def newton(_, z):
            p = jax.nn.sigmoid(-y * z)
            gradient = -y * p * t + (z - w)
            curvature = p * (1.0 - p) * t + 1.0
            return z - gradient / curvature

        return jax.lax.fori_loop(0, newton_steps, newton, w)


LOSSES = {"squared": SquaredLoss, "logistic": LogisticLoss}


def get_loss(loss: str | Loss) -> Loss:
    """Return a :class:`Loss` from its name (``"squared"`` or ``"logistic"``)."""
    if isinstance(loss, Loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)} or a Loss instance, got {loss!r}")
    return LOSSES[loss]()
