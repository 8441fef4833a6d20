"""Wrappers that change how a task argument is treated, under Prefect's import path
(``prefect.utilities.annotations``):

- ``unmapped(x)``: in ``task.map``, pass ``x`` whole to every mapped run;
- ``allow_failure(future)``: run the task even if the upstream did not complete (it gets
  the upstream's exception);
- ``quote(x)``: pass ``x`` as it is, without looking inside it for futures;
- ``opaque(future)``: pass the future's result, without looking inside that result.
"""

from wfkit._annotations import BaseAnnotation, allow_failure, opaque, quote, unmapped

__all__ = ["BaseAnnotation", "allow_failure", "opaque", "quote", "unmapped"]
