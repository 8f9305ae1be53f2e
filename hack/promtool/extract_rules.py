#!/usr/bin/python3
"""Read rendered manifests on stdin, write the `spec` of every PrometheusRule
(its rule groups) as a Prometheus rules file to stdout."""
import sys

import yaml

groups = []
for doc in yaml.safe_load_all(sys.stdin):
    if doc and doc.get("kind") == "PrometheusRule":
        groups.extend(doc["spec"]["groups"])
if not groups:
    sys.exit("extract_rules.py: no PrometheusRule in the input")
yaml.safe_dump({"groups": groups}, sys.stdout, sort_keys=False, width=1000)
