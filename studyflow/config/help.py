"""A part's or sweep's parameters as the command line's help shows them: each field of its config,
with its type, its default in each profile and its description.

Read from the config class itself (its fields and PROFILE_DEFAULTS), so the help cannot drift from
what `--set` accepts. Nothing is validated or resolved here ("auto" stays "auto"), and nothing
beyond pydantic is imported: `--help` stays as quick as a refused parameter.
"""

from __future__ import annotations

import argparse
import json
import textwrap
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from studyflow.config.base import PROFILES, PartConfig

INDENT = " " * 6
WIDTH = 100


def type_name(annotation: Any) -> str:
    """The annotation as a reader of `--set NAME=VALUE` needs it: `int | None`, `list[int]`, ..."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(json.dumps(value) for value in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(arg) for arg in args)
    if annotation is type(None):
        return "None"
    if origin is not None:
        inner = ", ".join("..." if arg is Ellipsis else type_name(arg) for arg in args)
        return f"{origin.__name__}[{inner}]" if inner else origin.__name__
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object {" + ", ".join(annotation.model_fields) + "}"
    return getattr(annotation, "__name__", str(annotation))


def value_text(value: Any) -> str:
    if value is PydanticUndefined:
        return "(required)"
    if value is None:
        return "None"
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return json.dumps(value)


def profile_default(config: type[PartConfig], name: str, profile: str) -> Any:
    """The value `name` takes in `profile` when the user leaves it unset; a partial dict given by the
    profile for an object field (a sweep's search space, its pruner) updates the field's default."""
    field = config.model_fields[name]
    default = field.get_default(call_default_factory=True)
    given = config.PROFILE_DEFAULTS.get(profile, {}).get(name, default)
    if isinstance(default, BaseModel) and isinstance(given, dict):
        return {**default.model_dump(mode="json"), **given}
    return given


def parameter_help(config: type[PartConfig], skip: tuple[str, ...] = ()) -> str:
    """Every parameter of `config` but `profile` and `skip` (those given as options of their own)."""
    lines = ["parameters (--set NAME=VALUE, VALUE as JSON where it parses; the default depends on --profile):"]
    for name, field in config.model_fields.items():
        if name == "profile" or name in skip:
            continue
        defaults = {profile: value_text(profile_default(config, name, profile)) for profile in PROFILES}
        default = (
            f"default: {defaults[PROFILES[0]]} (every profile)"
            if len(set(defaults.values())) == 1
            else "default: " + ", ".join(f"{profile} {value}" for profile, value in defaults.items())
        )
        lines.append(f"  {name} ({type_name(field.annotation)})")
        for text in (field.description or "(no description)", default):
            lines.append(
                textwrap.fill(
                    text,
                    WIDTH,
                    initial_indent=INDENT,
                    subsequent_indent=INDENT,
                    break_long_words=False,
                    break_on_hyphens=False,
                )
            )
    return "\n".join(lines)


class ParametersHelp(argparse.Action):
    """`-h/--help` of a command whose first argument names a config (`run PART`, `sweep KIND`): after
    it, the help ends with that config's parameters. argparse has taken the name by then (it reads
    positionals before the option that follows them); before it, the help is the command's own."""

    def __init__(
        self,
        option_strings,
        dest,
        configs: dict[str, type[PartConfig]],
        name: str,
        skip: tuple[str, ...] = (),
        **kwargs,
    ):
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, **kwargs)
        self.configs, self.name, self.skip = configs, name, skip

    def __call__(self, parser, namespace, values, option_string=None):
        parser.print_help()
        chosen = getattr(namespace, self.name, None)
        if chosen in self.configs:
            print(f"\n{parameter_help(self.configs[chosen], self.skip)}")
        else:
            print(f"\n{parser.prog} {self.name.upper()} --help lists the {self.name}'s parameters")
        parser.exit()
