#!/usr/bin/env bash
# Test the chart's alerts with promtool:
#   1. render charts/backup-guard with prometheusRule.enabled=true (defaults
#      otherwise) and extract the rule groups into a rules file;
#   2. promtool check rules (syntax, PromQL);
#   3. promtool test rules hack/promtool/alerts_test.yaml (every alert fires
#      on its series and stays silent without it).
# Also checks the committed manifests/monitoring/monitoring.yaml rules.
#
#   hack/promtool/test-alerts.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../render/lib.sh
source "$HERE/../render/lib.sh"
export LOG_TAG=promtool
render_deps
ensure_apt prometheus   # promtool (Debian ships it in the prometheus package)
command -v promtool >/dev/null || die "promtool not found after installing prometheus"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

render_chart --set prometheusRule.enabled=true --show-only templates/prometheusrule.yaml >"$tmp/rendered.yaml"
"$PY" "$HERE/extract_rules.py" <"$tmp/rendered.yaml" >"$tmp/rules.yaml"
cp "$HERE/alerts_test.yaml" "$tmp/alerts_test.yaml"

log "promtool check rules (chart render)"
promtool check rules "$tmp/rules.yaml"
if [[ -f $REPO/manifests/monitoring/monitoring.yaml ]]; then
  log "promtool check rules (manifests/monitoring/monitoring.yaml)"
  "$PY" "$HERE/extract_rules.py" <"$REPO/manifests/monitoring/monitoring.yaml" >"$tmp/manifest-rules.yaml"
  promtool check rules "$tmp/manifest-rules.yaml"
fi

# Every alert in the rules must be exercised by the tests.
untested=0
while read -r alert; do
  grep -q "alertname: $alert\b" "$tmp/alerts_test.yaml" || { log "no test for alert $alert"; untested=1; }
done < <(grep -oP '^\s*- alert: \K\S+' "$tmp/rules.yaml")
((untested == 0)) || die "every alert needs a test in hack/promtool/alerts_test.yaml"

log "promtool test rules"
(cd "$tmp" && promtool test rules alerts_test.yaml)
n=$(grep -c '^  - name:' "$tmp/alerts_test.yaml")
log "alert tests: $n passed, 0 failed"
