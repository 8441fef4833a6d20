"""wfkit's pytest plugin (registered through the ``pytest11`` entry point).

The isolated harness, its options (``--wf-isolated``, ``--wf-store``, ``--wf-keep-stores``),
fixtures (``wf_harness``, ``wf_clock``, ``wf_store``) and the ``wf`` marker are being built
(issue 3); until then this plugin registers nothing, so installing wfkit does not change
how pytest runs.
"""
