"""Turns typed functions into Claude tools and runs the calls the model asks for.

A tool is a plain function with type hints and a docstring. Its `input_schema` is derived from
the signature; a parameter typed `ToolContext` is injected by the registry and never appears in
the schema, so the model cannot choose whose data a tool reads.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, get_type_hints

from pydantic import BaseModel, ValidationError, create_model

from tools.context import ToolContext, ToolError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    fn: Callable[..., Any]
    input_model: type[BaseModel]
    context_param: str | None

    def schema(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": _strip_titles(self.input_model.model_json_schema()),
        }


@dataclass(frozen=True)
class ToolOutcome:
    content: str
    is_error: bool


def tool(fn: Callable[..., Any]) -> Tool:
    """Describe `fn` as a tool: name from the function, description from its docstring."""
    hints = get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    context_param = None
    for name, param in inspect.signature(fn).parameters.items():
        annotation = hints.get(name, Any)
        if annotation is ToolContext:
            context_param = name
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[name] = (annotation, default)
    model = create_model(f"{fn.__name__}_input", **fields)
    description = inspect.getdoc(fn)
    if not description:
        raise ValueError(f"tool {fn.__name__} needs a docstring: it is the model's manual")
    return Tool(fn.__name__, description, fn, model, context_param)


def _strip_titles(schema: Any) -> Any:
    """Pydantic's auto-generated titles only add tokens to every request."""
    if isinstance(schema, dict):
        return {k: _strip_titles(v) for k, v in schema.items() if k != "title"}
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    return schema


def _to_json(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool]) -> None:
        self._tools = {t.name: t for t in tools}
        # Built once: identical bytes on every request (a stable, cacheable prefix).
        self._schemas = [t.schema() for t in self._tools.values()]

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def names(self) -> list[str]:
        return list(self._tools)

    def schemas(self) -> list[dict[str, Any]]:
        return self._schemas

    def run(self, name: str, raw_input: Any, ctx: ToolContext) -> ToolOutcome:
        """Run one call. Never raises: every failure becomes an error result for the model.

        Each call runs in a savepoint: a crash inside a tool undoes its writes, while a ToolError
        keeps them (a failed verification attempt must still count).
        """
        found = self._tools.get(name)
        if found is None:
            return ToolOutcome(f"Unknown tool {name!r}. Available: {', '.join(self._tools)}", True)
        try:
            args = found.input_model.model_validate(raw_input or {})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors()
            )
            return ToolOutcome(f"Invalid input for {name}: {problems}", True)
        kwargs = dict(args)
        if found.context_param:
            kwargs[found.context_param] = ctx
        savepoint = ctx.session.begin_nested()
        try:
            result = found.fn(**kwargs)
        except ToolError as exc:
            savepoint.commit()
            return ToolOutcome(str(exc), True)
        except Exception:
            savepoint.rollback()
            log.exception("tool %s failed", name)
            return ToolOutcome(f"The {name} tool failed unexpectedly. Try again later.", True)
        savepoint.commit()
        return ToolOutcome(_to_json(result), False)
