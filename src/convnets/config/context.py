"""The project's Kedro context (``settings.CONTEXT_CLASS``)."""

from __future__ import annotations

from typing import Any

from kedro.framework.context import KedroContext

from convnets.parameters import keeping_invalid_sections


class ProjectContext(KedroContext):
    """Kedro's context, whose parameter validation keeps a section that does not parse.

    Kedro parses the parameters while it builds the catalog, before any
    ``before_pipeline_run`` hook, and stops at the first run of failures with pydantic's
    report (keys relative to the section, no fix). Here such a section becomes
    ``InvalidParameters``, so ``hooks.ParameterCheck`` can report every problem of the run
    in one message, after the unknown keys it checks first.
    """

    @property
    def params(self) -> dict[str, Any]:
        with keeping_invalid_sections():
            return super().params
