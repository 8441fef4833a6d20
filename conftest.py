"""Repository-wide pytest configuration.

Hypothesis profiles: ``ci`` (used when ``CI`` is set) runs more examples and prints the
blob needed to reproduce a failure; ``dev`` is quicker. Neither has a per-example deadline:
this code is measured by benchmarks/, not by test timings, and shared CI machines are noisy.
Pick one explicitly with ``HYPOTHESIS_PROFILE=ci|dev``.

Runs that wfkit's own tests record without a harness go to a throwaway ``WFKIT_HOME``
(unless one is set), never to the developer's ``~/.wfkit``. The process that makes it (the
pytest process; xdist's workers inherit its ``WFKIT_HOME``) removes it when it exits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

from hypothesis import settings

if "WFKIT_HOME" not in os.environ:
    _home = tempfile.mkdtemp(prefix="wfkit-tests-home-")
    os.environ["WFKIT_HOME"] = _home
    atexit.register(shutil.rmtree, _home, ignore_errors=True)

settings.register_profile("ci", max_examples=200, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
