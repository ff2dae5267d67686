"""Keep pydantic off the start-up path of commands whose options are plain strings.

typer (0.29) converts every non-flag parameter through a pydantic ``TypeAdapter`` built on
first use, even when the value is absent, so ``zoo list`` would import pydantic (~100-200 ms
on these machines, more than the whole command may take) just to pass ``--format`` through
unchanged. For parameters annotated exactly ``str`` (or ``str | None``) without a custom parser
this installs the trivial conversion typer's own string adapter performs (bytes decoded,
anything else ``str()``); flags that already hold a bool pass through; every other parameter
(and a flag given as text) keeps typer's adapters.

The hook is guarded: with a typer that lacks these internals it does nothing, and commands
still work, only slower to start.
"""

from __future__ import annotations

from typing import Any


def install() -> None:
    try:
        from typer._coercion import RuntimeParam, build_runtime_param
        from typer.core import _TyperParameter
    except ImportError:
        return
    if getattr(_TyperParameter, "_zoo_plain_strings", False):
        return
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class PlainString(RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, bytes):
                return value.decode("utf-8", "replace")
            return str(value)

    @dataclass(frozen=True)
    class PlainFlag(RuntimeParam):
        """A flag's value is usually a bool already; only text goes through typer's parser."""

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, bool):
                return value
            slow = build_runtime_param(param.type_descriptor)
            return slow._coerce_value(value, param=param, ctx=ctx)

    @dataclass(frozen=True)
    class PlainNumber(RuntimeParam):
        """int and float options: converted directly; text that is not a number goes through
        typer's parser, so the error message is typer's own."""

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            number_type = param.type_descriptor.annotation
            if isinstance(value, number_type) and not isinstance(value, bool):
                return value
            if isinstance(value, str):
                try:
                    return number_type(value)
                except ValueError:
                    pass
            slow = build_runtime_param(param.type_descriptor)
            return slow._coerce_value(value, param=param, ctx=ctx)

    @dataclass(frozen=True)
    class PlainStrings(RuntimeParam):
        """A repeatable text option (``list[str]``): click hands over a tuple of strings."""

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
                return list(value)
            slow = build_runtime_param(param.type_descriptor)
            return slow._coerce_value(value, param=param, ctx=ctx)

    plain_types: dict[Any, Any] = {str: PlainString, bool: PlainFlag, int: PlainNumber}
    plain_types[float] = PlainNumber
    plain_types[list[str]] = PlainStrings

    original = _TyperParameter.get_runtime_param

    def get_runtime_param(self: Any) -> Any:
        descriptor = getattr(self, "type_descriptor", None)
        if (
            getattr(self, "_runtime_param", True) is None
            and descriptor is not None
            and descriptor.annotation in plain_types
            and descriptor.file_annotation is None
            and getattr(descriptor.parameter_info, "parser", None) is None
        ):
            plain = plain_types[descriptor.annotation]
            self._runtime_param = plain(
                annotation=descriptor.annotation, parameter_info=descriptor.parameter_info
            )
        return original(self)

    _TyperParameter.get_runtime_param = get_runtime_param  # type: ignore[method-assign]
    _TyperParameter._zoo_plain_strings = True  # type: ignore[attr-defined]
