"""Hypothesis budgets for the adversarial tests (``tests/test_adversarial.py``).

Two budgets are named here:

``ci``    (the default) a few hundred examples per property; what ``.ci/run`` runs.
``long``  thousands of examples per property, for a thorough local run.

Pick one with the ``HYPOTHESIS_PROFILE`` environment variable::

    HYPOTHESIS_PROFILE=long python -m pytest -q tests/test_adversarial.py

The chosen budget is applied per test with ``@FUZZ`` instead of being loaded globally,
so other test files keep their own ``@settings``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE_ENV = "HYPOTHESIS_PROFILE"

_COMMON = dict(
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
    print_blob=True,
)

settings.register_profile("ci", max_examples=200, **_COMMON)
settings.register_profile("long", max_examples=5000, **_COMMON)


def selected_profile() -> str:
    """The profile named by ``HYPOTHESIS_PROFILE`` if it is one of ours, else ``ci``."""
    name = os.environ.get(PROFILE_ENV, "ci")
    return name if name in ("ci", "long") else "ci"


#: decorator applying the selected budget to a ``@given`` test
FUZZ = settings(settings.get_profile(selected_profile()))
