{{/* Names, labels and the per-process settings shared by every template. */}}

{{- define "dynabridge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dynabridge.fullname" -}}
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

{{/* The name of one process's objects: <fullname>-bridge, <fullname>-indexer. */}}
{{- define "dynabridge.component" -}}
{{- printf "%s-%s" (include "dynabridge.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dynabridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dynabridge.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "dynabridge.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "dynabridge.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{/* Labels of objects that belong to no single process (ConfigMap, ServiceAccount). */}}
{{- define "dynabridge.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "dynabridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "dynabridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dynabridge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* One process's autoscaling: the shared defaults under its own values. */}}
{{- define "dynabridge.autoscaling" -}}
{{- $own := index .root.Values .component "autoscaling" }}
{{- toYaml (mergeOverwrite (deepCopy .root.Values.autoscaling) (deepCopy $own)) }}
{{- end }}

{{/* HPA behavior: scale up in steps, scale down one pod per period after a long window. */}}
{{- define "dynabridge.behavior" -}}
scaleUp:
  stabilizationWindowSeconds: {{ .scaleUp.stabilizationWindowSeconds }}
  policies:
    - type: Pods
      value: {{ .scaleUp.pods }}
      periodSeconds: {{ .scaleUp.periodSeconds }}
scaleDown:
  stabilizationWindowSeconds: {{ .scaleDown.stabilizationWindowSeconds }}
  policies:
    - type: Pods
      value: {{ .scaleDown.pods }}
      periodSeconds: {{ .scaleDown.periodSeconds }}
{{- end }}

{{/* Fail the render when a process's grace period is too short for a clean stop
(docs/deploy.md#graceful-shutdown): leases released, the group left. */}}
{{- define "dynabridge.checkGrace" -}}
{{- $config := .root.Values.config }}
{{- $grace := (index .root.Values .component).terminationGracePeriodSeconds | float64 }}
{{- $needed := 0.0 }}
{{- if eq .component "bridge" }}
{{- $needed = addf (dig "bridge" "shutdown_timeout_s" 20.0 $config) 20.0 }}
{{- else }}
{{- $needed = addf (dig "indexer" "shutdown_timeout_s" 20.0 $config) (dig "search" "request_timeout_s" 30.0 $config) 10.0 }}
{{- end }}
{{- if lt $grace $needed }}
{{- fail (printf "%s.terminationGracePeriodSeconds (%v) is shorter than a clean stop needs (%v s): raise it, or lower the shutdown timeouts in config" .component $grace $needed) }}
{{- end }}
{{- end }}
