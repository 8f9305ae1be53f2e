#!/usr/bin/env bash
# Render charts/backup-guard like `helm template` would, to stdout.
#
#   hack/render/render.sh [VALUES.yaml]... [-f VALUES.yaml]... [--set k=v]...
#       [--set-string k=v]... [--set-file k=path]... [--name RELEASE]
#       [--namespace NS] [--kube-version v1.20.2] [--api-versions g/v[/Kind]]...
#       [--no-default-api-versions] [--is-upgrade] [--release-service NAME]
#       [--show-only templates/x.yaml]... [--lookup-objects cluster-objects.yaml]
#       [--notes]   (print the rendered NOTES.txt instead of the manifests)
#
# Bare file arguments are values files (same as -f). Values are coalesced
# with the chart's values.yaml and validated against values.schema.json
# first, as Helm does; the renderer (hack/render/main.go: Go text/template +
# sprig, Helm's engine) is built on first use and cached under
# ~/.cache/backup-guard/render/. Defaults: release "backup-guard" in namespace
# "backup-guard", Kubernetes v1.30.0 capabilities.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
render_deps
args=()
takes_value=0
for a in "$@"; do
  if ((takes_value)); then
    args+=("$a"); takes_value=0; continue
  fi
  case $a in
    -f | --values | --set | --set-string | --set-file | --name | --namespace | --release-service | \
      --kube-version | --api-versions | -a | --show-only | --lookup-objects)
      args+=("$a"); takes_value=1 ;;
    -*) args+=("$a") ;;
    *)
      [[ -f $a ]] || die "no such values file: $a"
      args+=(-f "$a") ;;
  esac
done
render_chart "${args[@]}"
