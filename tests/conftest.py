"""Shared test configuration: hypothesis profiles.

``HYPOTHESIS_PROFILE=ci`` runs ten times as many examples as the default
``dev`` profile.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile("ci", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
