{{- define "flink-operator.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- end }}

{{- define "flink-operator.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "flink-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "flink-operator.serviceAccount" -}}
{{- if .Values.operatorServiceAccount.create -}}
{{ default (include "flink-operator.fullname" .) .Values.operatorServiceAccount.name }}
{{- else -}}
{{ default "default" .Values.operatorServiceAccount.name }}
{{- end }}
{{- end }}

{{- define "flink-operator.webhookService" -}}
{{ include "flink-operator.fullname" . }}-webhook
{{- end }}

{{- /* The Secret the webhook serves from (self-managed: written by the operator). */ -}}
{{- define "flink-operator.certificateSecret" -}}
{{- $c := .Values.webhook.certificates -}}
{{- if eq $c.mode "existing-secret" -}}
{{ required "webhook.certificates.secretName is required with mode existing-secret" $c.secretName }}
{{- else if eq $c.mode "cert-manager" -}}
{{ default (printf "%s-webhook-cert-manager" (include "flink-operator.fullname" .)) $c.secretName }}
{{- else -}}
{{ default (printf "%s-webhook-certs" (include "flink-operator.fullname" .)) $c.secretName }}
{{- end }}
{{- end }}

{{- /* Namespaces that get the job service account and Role: the watched ones, else the release's. */ -}}
{{- define "flink-operator.jobNamespaces" -}}
{{- if .Values.watchNamespaces -}}
{{ toJson .Values.watchNamespaces }}
{{- else -}}
{{ toJson (list .Release.Namespace) }}
{{- end }}
{{- end }}

{{- /* "true" when leader election is on (enabled: auto means when replicas > 1), else empty. */ -}}
{{- define "flink-operator.leaderElection" -}}
{{- $enabled := .Values.leaderElection.enabled -}}
{{- if kindIs "bool" $enabled -}}
{{- if $enabled }}true{{ end -}}
{{- else if eq (toString $enabled) "auto" -}}
{{- if gt (int .Values.replicas) 1 }}true{{ end -}}
{{- else -}}
{{ fail (printf "leaderElection.enabled must be auto, true or false, not %q" (toString $enabled)) }}
{{- end -}}
{{- end }}

{{- define "flink-operator.checkValues" -}}
{{- $mode := .Values.webhook.certificates.mode -}}
{{- if not (has $mode (list "self-managed" "cert-manager" "existing-secret")) -}}
{{ fail (printf "webhook.certificates.mode must be self-managed, cert-manager or existing-secret, not %q" $mode) }}
{{- end -}}
{{- if and .Values.webhook.create (eq $mode "existing-secret") (not .Values.webhook.certificates.caBundle) -}}
{{ fail "webhook.certificates.caBundle (PEM of the CA) is required with mode existing-secret" }}
{{- end -}}
{{- if not (has .Values.webhook.failurePolicy (list "Fail" "Ignore")) -}}
{{ fail "webhook.failurePolicy must be Fail or Ignore" }}
{{- end -}}
{{- end }}

{{- /* DNS names of the webhook Service, for its serving certificate. */ -}}
{{- define "flink-operator.webhookDnsNames" -}}
{{- $svc := include "flink-operator.webhookService" . -}}
{{- $ns := .Release.Namespace -}}
{{ toJson (list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns)) }}
{{- end }}
