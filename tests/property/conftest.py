"""Hypothesis settings of the bad-input suite: few enough examples to keep `make test` quick.

``HYPOTHESIS_PROFILE=thorough`` runs many more examples, e.g. before a release.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "suite",
    max_examples=60,
    deadline=None,  # two shared cores: timing varies too much for per-example deadlines
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", parent=settings.get_profile("suite"), max_examples=2_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))
