"""The JSON Schemas of the event messages, shipped in ``schemas/`` and checked with ``jsonschema``.

A violation is described in one line that says where and what: ``period '2024-17' does not match
YYYY-PP with PP 01-16, e.g. '2024-03'``, ``amounts: 'credit' is a required property``. A pattern says
what it asks for in words with the annotation ``x-pattern-hint`` (unknown keywords are annotations in
JSON Schema, ignored by other validators).
"""

from __future__ import annotations

import functools
import json
from importlib.resources import files
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

JOURNAL_POSTED = "gl-journal-posted.schema.json"
ANALYSIS_COMPLETED = "analysis-completed.schema.json"
ANALYSIS_ERROR = "analysis-error.schema.json"
#: An annotation of the shipped schemas: what a ``pattern`` asks for, in words, for the violation's text.
PATTERN_HINT = "x-pattern-hint"


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """One of the shipped schemas, e.g. :data:`JOURNAL_POSTED`.

    :param name: the file name under ``frontier_provider/events/schemas``
    """
    text = (files("frontier_provider.events") / "schemas" / name).read_text(encoding="utf-8")
    return json.loads(text)


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def violation(name: str, document: Any) -> str | None:
    """The most relevant way ``document`` violates the schema ``name``, in one line; None when it is valid.

    :param name: the schema's file name, e.g. :data:`JOURNAL_POSTED`
    :param document: the decoded JSON document
    """
    errors = list(_validator(name).iter_errors(document))
    if not errors:
        return None
    described = describe(best_match(errors))
    others = len(errors) - 1
    if others:
        described += f" (and {others} more {'problem' if others == 1 else 'problems'})"
    return described


def describe(error: ValidationError) -> str:
    """One schema violation: the path of the value, then what is wrong with it.

    :param error: a violation ``jsonschema`` found
    """
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
    path = path.removeprefix(".")
    message = error.message
    hint = error.schema.get(PATTERN_HINT) if isinstance(error.schema, dict) else None
    if error.validator == "pattern" and isinstance(hint, str):
        message = f"{error.instance!r} does not match {hint}"
    if not path:
        return message
    # "period '2024-13' does not match ..." reads as a sentence; "amounts: Additional properties..." needs
    # the colon.
    separator = " " if message.startswith(repr(error.instance)) else ": "
    return f"{path}{separator}{message}"
