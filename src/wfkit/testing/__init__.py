"""Testing wfkit workflows: an isolated store and a fake clock, and assertions on runs.

``harness()`` works anywhere; the pytest plugin (``--wf-isolated``, ``wf_harness``) builds
on it. Property-testing strategies live in :mod:`wfkit.testing.strategies`.
"""

from wfkit.clock import FakeClock
from wfkit.testing.assertions import assert_state_history
from wfkit.testing.harness import Harness, harness, wfkit_test_harness

__all__ = ["FakeClock", "Harness", "assert_state_history", "harness", "wfkit_test_harness"]
