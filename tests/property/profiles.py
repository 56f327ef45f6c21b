"""Hypothesis settings: a short profile for CI, a long one chosen by environment variable.

``TENANCY_HYPOTHESIS_PROFILE=long pytest tests/property`` runs the long profile.
The settings are passed explicitly to each machine run; nothing is registered
globally.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE_VARIABLE = "TENANCY_HYPOTHESIS_PROFILE"

PROFILES: dict[str, settings] = {
    "ci": settings(
        max_examples=15,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        print_blob=True,
    ),
    "long": settings(
        max_examples=300,
        stateful_step_count=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        print_blob=True,
    ),
}


def active_profile() -> settings:
    """Return the profile named by ``TENANCY_HYPOTHESIS_PROFILE`` (default ``ci``).

    Raises:
        KeyError: the variable names no known profile.
    """
    name = os.environ.get(PROFILE_VARIABLE, "ci")
    if name not in PROFILES:
        raise KeyError(f"{PROFILE_VARIABLE}={name!r}; known profiles: {sorted(PROFILES)}")
    return PROFILES[name]
