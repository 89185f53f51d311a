"""Shared fixtures: every backend available here (the rest skip with a reason), seeded data.

Plain helpers (dtypes, random volumes) live in :mod:`helpers`, which tests import.
"""

from __future__ import annotations

import numpy as np
import pytest

from gpuresample.backends import REGISTRY, unavailable_reason


@pytest.fixture(params=list(REGISTRY))
def backend_name(request):
    """Each backend name; skips those that cannot run here, saying why."""
    reason = unavailable_reason(request.param)
    if reason is not None:
        pytest.skip(f"backend {request.param!r} unavailable: {reason}")
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
