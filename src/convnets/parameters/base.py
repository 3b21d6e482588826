"""The base models, and how a section that does not parse is explained.

``model_validate`` raises pydantic's ``ValidationError`` as any model does. Within
``keeping_invalid_sections()`` (around Kedro's parameter validation, see
``convnets.config.context``) a section that does not parse becomes ``InvalidParameters``
instead, so that ``convnets.hooks.ParameterCheck`` reports every problem of the run at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from convnets.errors import UserError
from convnets.parameters.fields import LIST_FORMS


class Params(BaseModel):
    """Parameters: immutable, and unknown keys are errors (typos do not pass)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ParameterError(UserError, ValueError):
    """Parameters that cannot be used, each named by its full key with a fix to copy."""


def _key_path(loc: tuple[Any, ...], value: Any, missing: bool) -> list[str]:
    """The keys of ``loc`` as written in conf/.

    Pydantic also puts the tags and member types of unions in ``loc``
    (``convnet_augmented``, ``str``, ``Optimizer``): a part that is not a key of the
    value there is dropped, but for the last part of a missing-key error.
    """
    keys = []
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(value, Mapping):
            if part in value or (missing and last):
                keys.append(str(part))
                value = value.get(part)
        elif isinstance(value, list | tuple) and isinstance(part, int) and part < len(value):
            keys.append(str(part))
            value = value[part]
    return keys


# Errors from the branch of a ``name | Model`` union that the value was not meant for.
_MODEL_BRANCH = ("model_type", "model_attributes_type", "dict_type")


def _relevant(problem: dict[str, Any]) -> bool:
    given = problem.get("input")
    if problem["type"] in ("string_type", "literal_error") and isinstance(given, Mapping):
        return False  # a mapping was given: the error of the name branch is noise
    return not (problem["type"] in _MODEL_BRANCH and not isinstance(given, Mapping))


def describe_errors(section: str, value: Any, error: ValidationError) -> list[str]:
    """One line per problem: ``<full key>: <what is wrong> (got ...). Fix: --params=...``."""
    lines = []
    for problem in filter(_relevant, error.errors(include_url=False)):
        path = _key_path(problem["loc"], value, missing=problem["type"] == "missing")
        given = problem.get("input")
        if problem["type"].startswith("union_tag"):
            path.append("name")
            given = given.get("name") if isinstance(given, Mapping) else given
        key = ".".join([section, *path])
        message = problem["msg"].removeprefix("Value error, ")
        got = (
            ""
            if problem["type"] == "missing" or isinstance(given, Mapping)
            else f" (got {given!r})"
        )
        # A list item is set whole on the command line: image_size=180x180.
        settable = [section, *(part for part in path if not part.isdigit())]
        form = LIST_FORMS.get(settable[-1], "<value>")
        hint = f"--params={'.'.join(settable)}={form}"
        if problem["type"] == "extra_forbidden":
            hint = f"remove {key} from conf/ or --params"
        lines.append(f"{key}: {message}{got}. Fix: {hint}")
    return list(dict.fromkeys(lines))


class InvalidParameters:
    """What a section that failed to parse becomes within ``keeping_invalid_sections()``.

    Using it as parameters raises the explanation (when the hook did not run first).
    """

    def __init__(self, model: type, value: Any, error: ValidationError) -> None:
        self.model, self.value, self.error = model, value, error

    def explain(self, section: str) -> list[str]:
        return describe_errors(section, self.value, self.error)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # copy, pickle and repr probes
            raise AttributeError(name)
        raise ParameterError("\n".join(self.explain(f"<{self.model.__name__}>")))


_keeping_invalid: ContextVar[bool] = ContextVar("keeping_invalid_sections", default=False)


@contextmanager
def keeping_invalid_sections() -> Iterator[None]:
    """Within: a section's ``model_validate`` returns ``InvalidParameters`` if it fails."""
    token = _keeping_invalid.set(True)
    try:
        yield
    finally:
        _keeping_invalid.reset(token)


class ReportsInvalid:
    """Mixed into the models Kedro parses: a failure can be kept for the hook to report."""

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Any:
        """The parsed section; within ``keeping_invalid_sections()``, ``InvalidParameters``
        holding why it does not parse instead of pydantic's ``ValidationError``."""
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as error:
            if not _keeping_invalid.get():
                raise
            return InvalidParameters(cls, obj, error)


class Section(ReportsInvalid, Params):
    """A top-level parameter section, the type a node function declares for it."""


def parse(model: type, section: str, value: Any) -> Any:
    """``value`` (a dict from conf/) parsed as ``model``; ``ParameterError`` if invalid."""
    try:
        return model.model_validate(value)
    except ValidationError as error:
        raise ParameterError("\n".join(describe_errors(section, value, error))) from None
