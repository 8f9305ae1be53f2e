#!/usr/bin/python3
"""Validate coalesced chart values (JSON) against values.schema.json, as Helm
does before rendering. Usage: validate_values.py SCHEMA VALUES_JSON"""
import json
import sys

import jsonschema


def main() -> int:
    schema_path, values_path = sys.argv[1], sys.argv[2]
    with open(schema_path) as f:
        schema = json.load(f)
    with open(values_path) as f:
        values = json.load(f)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(values), key=lambda e: list(e.absolute_path))
    for e in errors:
        where = ".".join(str(p) for p in e.absolute_path) or "(root)"
        print(f"values.schema.json: {where}: {e.message}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
