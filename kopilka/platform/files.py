"""Reading program files and receipts from disk: YAML (1.2) or JSON, numbers as Decimal.

YAML is read as version 1.2, so `on: paid` stays the key "on" (YAML 1.1 would read
it as true) and `16:00` stays a string; floats are read as `Decimal` from their
text, never through a binary float. Syntax errors name the file, line and column.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import ConstructorError, SafeConstructor
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import ScalarNode

from kopilka.kernel.errors import InvalidInput, Problem
from kopilka.kernel.reading import MAX_DEPTH, document_problems


class _DecimalConstructor(SafeConstructor):
    """YAML floats become Decimal, read from the text as written."""

    def construct_yaml_float(self, node: Any) -> Any:
        assert isinstance(node, ScalarNode)
        text = str(node.value).replace("_", "")
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise ConstructorError(
                None, None, f"{text!r} is not a finite number", node.start_mark
            ) from None
        if not value.is_finite():
            raise ConstructorError(None, None, f"{text!r} is not a finite number", node.start_mark)
        return value


_DecimalConstructor.add_constructor(
    "tag:yaml.org,2002:float", _DecimalConstructor.construct_yaml_float
)


def _yaml() -> YAML:
    yaml = YAML(typ="safe", pure=True)
    yaml.Constructor = _DecimalConstructor
    return yaml


def parse_text(text: str, *, name: str, as_json: bool) -> object:
    """A JSON or YAML document's data; syntax errors become `InvalidInput` at name:line:col,
    and so does a document nested deeper than MAX_DEPTH or holding text no field may store
    (control characters, halves of surrogate pairs), each named by its place."""
    document = _parsed(text, name=name, as_json=as_json)
    problems = document_problems(document, max_depth=MAX_DEPTH)
    if problems:
        raise InvalidInput([Problem(f"{name}: {p.loc}" if p.loc else name, p.message)
                            for p in problems])  # fmt: skip
    return document


def _parsed(text: str, *, name: str, as_json: bool) -> object:
    try:
        if as_json:
            return json.loads(text, parse_float=Decimal)
        return _yaml().load(text)
    except json.JSONDecodeError as error:
        where = f"{name}:{error.lineno}:{error.colno}"
        raise InvalidInput([Problem(where, f"not valid JSON: {error.msg}")]) from None
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        raise InvalidInput([Problem(where, f"not valid YAML: {error.problem or error}")]) from None
    except RecursionError:  # the parsers recurse per level: far deeper than MAX_DEPTH
        raise InvalidInput(
            [Problem(name, f"is nested more than {MAX_DEPTH} levels deep")]
        ) from None
    except ValueError as error:  # e.g. an integer of more than 4,300 digits
        raise InvalidInput([Problem(name, f"not readable: {error}")]) from None


def load_document(path: Path) -> object:
    """The data of a .json, .yaml or .yml file (others are tried as JSON, then YAML)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput([Problem(str(path), "no such file")]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput([Problem(str(path), f"cannot be read: {error}")]) from None
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return parse_text(text, name=str(path), as_json=False)
    if suffix == ".json" or text.lstrip().startswith(("{", "[")):
        return parse_text(text, name=str(path), as_json=True)
    return parse_text(text, name=str(path), as_json=False)
