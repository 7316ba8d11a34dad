"""What every benchmark records about the run that produced its figures."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np

import cvxnn_jax as cn

REPO = Path(__file__).resolve().parents[1]


def package_version(distribution: str):
    """An installed distribution's version, or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:  # informational only
        return None


def git_commit():
    """The repository's HEAD, or None outside a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
    except Exception:
        return None


def environment(**extra) -> dict:
    """Versions, device, machine load, commit, date and command line, plus ``extra``."""
    device = jax.devices()[0]
    return dict(
        jax=jax.__version__, jaxlib=package_version("jaxlib"), numpy=np.__version__,
        cvxnn_jax=cn.__version__, python=platform.python_version(), device=str(device),
        device_kind=device.device_kind, backend=jax.default_backend(), cpu_count=os.cpu_count(),
        affinity_cpus=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        load_average_at_start=os.getloadavg() if hasattr(os, "getloadavg") else None,
        machine=platform.machine(), processor=platform.processor(),
        x64_enabled=bool(jax.config.jax_enable_x64), git_commit=git_commit(),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        command=" ".join([Path(sys.executable).name] + sys.argv),
        **extra,
    )
