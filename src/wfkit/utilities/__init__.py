"""Utilities under Prefect's import paths (``wfkit.utilities.annotations``)."""
