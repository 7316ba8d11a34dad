"""Every vmapped operator equals a Python loop over the same inputs (DESIGN.md section 3).

jax/jaxlib 0.10.2 silently miscompiled vmapped matvecs on the CPU at batch sizes 9-16;
these tests make such a release fail the suite instead of the users.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cvxnn_jax as cn
from cvxnn_jax._programs.gated_relu import GatedReLUProgram

BATCH_SIZES = range(1, 21)


@pytest.fixture(scope="module")
def program():
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.standard_normal((37, 6)))
    gates = cn.sample_gates(jax.random.PRNGKey(0), X, 11)
    y = jnp.asarray(rng.choice([-1.0, 1.0], 37))
    return GatedReLUProgram(X=X, masks=cn.gate_masks(X, gates), y=y, lam=jnp.asarray(0.1),
                            loss=cn.LogisticLoss())


def _check(fn, batch, rtol=1e-12):
    single = eqx.filter_jit(fn)
    looped = jnp.stack([single(*[a[i] for a in batch]) for i in range(batch[0].shape[0])])
    vmapped = jax.jit(jax.vmap(fn))(*batch)
    np.testing.assert_allclose(vmapped, looped, rtol=rtol, atol=1e-13)


@pytest.mark.parametrize("size", BATCH_SIZES)
def test_vmapped_operators_equal_loop(program, size):
    rng = np.random.default_rng(size)
    n, P = program.masks.shape
    d = program.X.shape[1]
    W = jnp.asarray(rng.standard_normal((size, d, P)))
    r = jnp.asarray(rng.standard_normal((size, n)))
    steps = jnp.asarray(rng.uniform(0.1, 2.0, size))
    lams = jnp.asarray(rng.uniform(0.0, 1.0, size))
    _check(program.matvec, (W,))
    _check(program.rmatvec, (r,))
    _check(lambda w, s: program.prox(w, s), (W, steps))
    _check(lambda v, lam: cn.prox_group_l2(v, lam), (r, lams))
    _check(lambda z: program.loss.grad(z, program.y), (r,))
    _check(lambda z: program.loss.value(z, program.y), (r,))
    _check(lambda w: program.objective(w), (W,))


@pytest.mark.parametrize("size", [1, 9, 16, 20])
def test_vmapped_solve_over_lam_equals_loop(program, size):
    lams = jnp.geomspace(1e-3, 1e-1, size)

    def solve(lam):
        p = GatedReLUProgram(program.X, program.masks, program.y, lam, program.loss)
        return cn.fista_solve(p, p.init_x(), 1e-12, 5000).x

    # Each lane's operators equal the loop's to round-off (above), but a batched matmul
    # accumulates in another order and the trajectories part at round-off; solved to
    # 1e-12 both sit on the unique optimum, so 1e-7 is far above the difference left
    # and far below the miscompile's errors.
    _check(solve, (lams,), rtol=1e-7)
