{{/* Names ---------------------------------------------------------------- */}}

{{- define "backup-guard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name: the release name when it already contains the chart name
(`helm install backup-guard ...` gives "backup-guard", so the Service is
backup-guard.<namespace>.svc), else "<release>-backup-guard".
*/}}
{{- define "backup-guard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "backup-guard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "backup-guard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "backup-guard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "backup-guard.labels" -}}
helm.sh/chart: {{ include "backup-guard.chart" . }}
{{ include "backup-guard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: backup-guard
{{- end }}

{{- define "backup-guard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "backup-guard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "backup-guard.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "backup-guard.priorityClassName" -}}
{{- if .Values.priorityClassName }}
{{- .Values.priorityClassName }}
{{- else if .Values.priorityClass.create }}
{{- include "backup-guard.fullname" . }}
{{- end }}
{{- end }}

{{/* Whether the pods serve admission (and so webhook configurations exist). */}}
{{- define "backup-guard.servesWebhook" -}}
{{- if ne .Values.command "controller" }}true{{ end }}
{{- end }}

{{/* Whether the pods run the cleanup controller. */}}
{{- define "backup-guard.runsController" -}}
{{- if ne .Values.command "webhook" }}true{{ end }}
{{- end }}

{{/*
Refuse value combinations that render but cannot work. Included at the top of
deployment.yaml, which every install renders.
*/}}
{{- define "backup-guard.checks" -}}
{{- if eq .Release.Namespace .Values.policy.velero.namespace }}
{{- fail (printf "backup-guard must not be installed in Velero's namespace %q (the release namespace equals policy.velero.namespace): the namespace-deletion webhook never covers the guard's own namespace, so deleting it is not refused; the deletion removes the guard's pods, which cannot be recreated in a Terminating namespace, so the guarded operations fail closed cluster-wide and the namespace hangs in Terminating until the webhook configurations are deleted by hand. Install it in a namespace of its own, e.g. --namespace backup-guard (docs/install.md)" .Release.Namespace) }}
{{- end }}
{{- end }}

{{/* Certificates ---------------------------------------------------------- */}}

{{- define "backup-guard.tlsSecretName" -}}
{{- if eq .Values.certs.mode "provided" }}
{{- required "certs.provided.secretName is required when certs.mode is provided" .Values.certs.provided.secretName }}
{{- else }}
{{- printf "%s-tls" (include "backup-guard.fullname" .) }}
{{- end }}
{{- end }}

{{- define "backup-guard.serviceHost" -}}
{{- printf "%s.%s.svc" (include "backup-guard.fullname" .) .Release.Namespace }}
{{- end }}

{{/*
The generated CA and serving certificate for certs.mode=generate, as a dict
{caCert, cert, key} of PEM strings. Generated once per render and cached in
.Values (every template sees the same map), so the Secret and the webhook
configurations carry the same CA. On upgrade the existing Secret is reused
(lookup), so the certificate does not change under running pods.
*/}}
{{- define "backup-guard.generatedCerts" -}}
{{- if not (hasKey .Values "__generatedCerts") }}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (include "backup-guard.tlsSecretName" .) }}
{{- $out := dict }}
{{- if and $secret $secret.data (hasKey $secret.data "ca.crt") (hasKey $secret.data "tls.crt") (hasKey $secret.data "tls.key") }}
{{- $_ := set $out "caCert" (index $secret.data "ca.crt" | b64dec) }}
{{- $_ := set $out "cert" (index $secret.data "tls.crt" | b64dec) }}
{{- $_ := set $out "key" (index $secret.data "tls.key" | b64dec) }}
{{- else }}
{{- $fullname := include "backup-guard.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- $sans := list $fullname (printf "%s.%s" $fullname $ns) (printf "%s.%s.svc" $fullname $ns) (printf "%s.%s.svc.cluster.local" $fullname $ns) }}
{{- $ca := genCA (printf "%s-ca" $fullname) (int .Values.certs.generate.caValidityDays) }}
{{- $cert := genSignedCert (printf "%s.%s.svc" $fullname $ns) nil $sans (int .Values.certs.generate.certValidityDays) $ca }}
{{- $_ := set $out "caCert" $ca.Cert }}
{{- $_ := set $out "cert" $cert.Cert }}
{{- $_ := set $out "key" $cert.Key }}
{{- end }}
{{- $_ := set .Values "__generatedCerts" $out }}
{{- end }}
{{- toYaml (index .Values "__generatedCerts") }}
{{- end }}

{{/* clientConfig + the CA for one webhook path. */}}
{{- define "backup-guard.clientConfig" -}}
{{- $root := .root -}}
clientConfig:
  service:
    name: {{ include "backup-guard.fullname" $root }}
    namespace: {{ $root.Release.Namespace }}
    path: {{ .path }}
    port: {{ $root.Values.service.port }}
{{- if eq $root.Values.certs.mode "generate" }}
  caBundle: {{ (include "backup-guard.generatedCerts" $root | fromYaml).caCert | b64enc }}
{{- else if eq $root.Values.certs.mode "provided" }}
  caBundle: {{ required "certs.provided.caBundle is required when certs.mode is provided" $root.Values.certs.provided.caBundle }}
{{- end }}
{{- end }}

{{/* Annotations of the webhook configurations (cert-manager CA injection). */}}
{{- define "backup-guard.webhookAnnotations" -}}
{{- if eq .Values.certs.mode "certManager" }}
annotations:
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "backup-guard.fullname" . }}-serving
{{- end }}
{{- end }}

{{/*
Settings every webhook entry shares. Must stay valid on Kubernetes 1.20 and
current releases: no matchConditions (1.27+).
*/}}
{{- define "backup-guard.webhookCommon" -}}
admissionReviewVersions: ["v1"]
sideEffects: NoneOnDryRun
matchPolicy: Equivalent
timeoutSeconds: {{ .Values.webhooks.timeoutSeconds }}
{{- end }}

{{/* Prometheus ------------------------------------------------------------ */}}

{{- define "backup-guard.prometheusJob" -}}
{{- default (include "backup-guard.fullname" .) .Values.prometheusRule.job }}
{{- end }}

{{- define "backup-guard.runbook" -}}
{{- printf "%s#%s" .root.Values.prometheusRule.runbookBaseUrl (lower .alert) }}
{{- end }}

{{/* Signing key -------------------------------------------------------------- */}}

{{/*
The signing key's base64 value for signingKey.create: the existing Secret's
(lookup) so upgrades keep it, else 64 random characters. Cached in .Values so
the Secret and the Deployment's checksum annotation agree within one render.
*/}}
{{- define "backup-guard.signingKeyData" -}}
{{- if not (hasKey .Values "__signingKeyData") }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace .Values.signingKey.secretName }}
{{- $key := "" }}
{{- if and $existing $existing.data (index $existing.data "key") }}
{{- $key = index $existing.data "key" }}
{{- else }}
{{- $key = randAlphaNum 64 | b64enc }}
{{- end }}
{{- $_ := set .Values "__signingKeyData" $key }}
{{- end }}
{{- index .Values "__signingKeyData" }}
{{- end }}

{{/*
PromQL for "this counter went up within the window": increase() for series
that are older than the window, plus series that did not exist one window
ago (a counter is created by its first increment, which increase() cannot
see). Args: m (selector), by (labels), w (window).
*/}}
{{- define "backup-guard.promql.increasedOrNew" -}}
(sum by ({{ .by }}) (increase({{ .m }}[{{ .w }}])) > 0)
or
(sum by ({{ .by }}) ({{ .m }} unless {{ .m }} offset {{ .w }}) > 0)
{{- end }}
