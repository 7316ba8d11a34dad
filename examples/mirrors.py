"""A library of mirrors: 2-, 3- and 4-layer ReLU networks fitted to the same 1-D data.

Each network is trained to global optimality through its Lasso (Zeger et al., arXiv
2403.01046; DESIGN.md section 4 item 4) and plotted with the breakpoints of its active
units. Breakpoints at training points are marked with a circle; a breakpoint that is the
reflection ``2 x_j2 - x_j1`` of a training point about another (only 4-layer networks
have them) is marked with a star, with a dotted line from the mirrored point.

The data are Figure 3's: ``x = (0, 4, 5, 7, 10, 11)``, ``y = (0, 0, 0, 2, 3, 3)``. As
``beta -> 0`` the minimum-L1 interpolants cost 2 (two layers), 1 and 1, and the
cheapest four-layer interpolant is one unit that ramps from 5 to 8, where 8 = 2*4 - 0.
Among the Lasso's optimal solutions the solver picks one; the figure's bottom row shows
that single reflected unit.

Run:  python examples/mirrors.py [output.png]    (default: /tmp/mirrors.png)
"""

import sys

import matplotlib

matplotlib.use("Agg")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import cvxnn_jax as cn  # noqa: E402

jax.config.update("jax_enable_x64", True)

X = np.array([0.0, 4.0, 5.0, 7.0, 10.0, 11.0])
Y = np.array([0.0, 0.0, 0.0, 2.0, 3.0, 3.0])
BETA = 1e-3  # the paper's scaling; this library's lam = beta / n
GRID = np.linspace(-1.0, 13.0, 561)


def kinks(features: cn.Features1D, coefficients, tol=1e-9):
    """Breakpoints where an active unit actually bends: ``[(position, reflected, mirror)]``."""
    found = []
    for i in np.flatnonzero(np.abs(np.asarray(coefficients)) > tol):
        unit = features.take(np.array([i]))
        for l, a in enumerate(np.asarray(unit.breakpoints[0])):
            h = 1e-3
            values = [float(unit(jnp.asarray(a + s * h))[0]) for s in (-1.0, 0.0, 1.0)]
            if abs(values[0] - 2 * values[1] + values[2]) > 1e-6:
                reflected = l == 0 and bool(unit.reflected[0])
                mirror = float(unit.breakpoints[0, 1]) if reflected else None
                found.append((float(a), reflected, mirror))
    return sorted(set(found), key=lambda k: k[0])


def one_unit_interpolant():
    """The single 4-layer unit that interpolates the data at L1 cost 1 (a reflection)."""
    features = cn.dictionary_1d(jnp.asarray(X), depth=4)
    A = np.asarray(features.matrix(jnp.asarray(X)))
    centred, yc = A - A.mean(0), Y - Y.mean()
    norms = np.sum(centred**2, axis=0)
    coef = centred.T @ yc / np.where(norms > 0, norms, 1.0)
    residual = np.max(np.abs(centred * coef - yc[:, None]), axis=0)
    j = int(np.flatnonzero((residual < 1e-12) & (norms > 0))[0])
    unit = features.take(np.array([j]))
    z = jnp.array([coef[j]])
    return unit, z, cn.recover_network_1d(unit, z, jnp.asarray(Y.mean() - coef[j] * A[:, j].mean()))


def main(path="/tmp/mirrors.png"):
    n = X.shape[0]
    panels = []
    for depth in (2, 3, 4):
        sol = cn.fit_1d(X, Y, BETA / n, depth=depth, tol=1e-9, max_steps=200_000)
        l1 = float(jnp.sum(jnp.abs(sol.coefficients)))
        title = (f"{depth} layers: objective {float(sol.objective):.3e}, "
                 f"||z||_1 = {l1:.3f}, {int(np.sum(np.asarray(sol.coefficients) != 0))} units")
        print(title, f"(relative gap {float(sol.relative_gap):.1e})")
        panels.append((title, sol.network, kinks(sol.features, sol.coefficients)))
    unit, z, network = one_unit_interpolant()
    title = "4 layers, one unit (an optimal interpolant): ramp from 5 to the mirror image 8"
    print(title)
    panels.append((title, network, kinks(unit, z)))

    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.6 * len(panels)), sharex=True)
    for ax, (title, network, points) in zip(axes, panels):
        ax.plot(GRID, np.asarray(network.predict(GRID)), color="tab:blue", lw=2, label="network")
        ax.scatter(X, Y, color="tab:red", zorder=3, label="data")
        for a, reflected, mirror in points:
            value = float(network(jnp.asarray(a)))
            if reflected:
                ax.scatter([a], [value], marker="*", s=220, color="tab:purple", zorder=4,
                           label="reflected breakpoint")
                ax.annotate("", xy=(a, -0.6), xytext=(mirror, -0.6),
                            arrowprops=dict(arrowstyle="<->", ls=":", color="tab:purple"))
                ax.text(0.5 * (a + mirror), -0.5, f"mirror at {mirror:g}", ha="center",
                        color="tab:purple", fontsize=8)
            else:
                ax.scatter([a], [value], marker="o", s=60, facecolors="none",
                           edgecolors="k", zorder=4, label="breakpoint")
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), loc="upper left", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_ylim(-1.0, 4.5)
    axes[-1].set_xlabel("x")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    print(f"saved {path}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
