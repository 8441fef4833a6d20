"""The run lifecycle and what carries it out (private: use the public API in ``wfkit``).

``lifecycle`` makes every decision of a run; ``drivers`` carry out its effects, sync or
async; ``calls`` binds a call and picks the driver; ``submit`` and ``process`` hand runs to
task runners; ``runs`` is the live run that publishes its states.
"""
