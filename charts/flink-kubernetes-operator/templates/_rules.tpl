{{- /* Generated from src/rbac.rs by `UPDATE_GENERATED=1 cargo test --test generated`; do not edit. */ -}}
{{- define "flink-operator.operatorRules" }}
- apiGroups:
  - flink.apache.org
  resources:
  - flinkdeployments
  - flinksessionjobs
  verbs:
  - get
  - list
  - watch
  - patch
- apiGroups:
  - flink.apache.org
  resources:
  - flinkdeployments/status
  - flinksessionjobs/status
  verbs:
  - get
  - patch
- apiGroups:
  - flink.apache.org
  resources:
  - flinkdeployments/finalizers
  - flinksessionjobs/finalizers
  verbs:
  - update
- apiGroups:
  - apps
  resources:
  - deployments
  verbs:
  - get
  - list
  - watch
  - create
  - patch
  - delete
- apiGroups:
  - ''
  resources:
  - services
  - configmaps
  verbs:
  - get
  - list
  - watch
  - create
  - patch
  - delete
- apiGroups:
  - networking.k8s.io
  resources:
  - ingresses
  verbs:
  - get
  - create
  - patch
  - delete
- apiGroups:
  - ''
  resources:
  - pods
  verbs:
  - list
- apiGroups:
  - events.k8s.io
  resources:
  - events
  verbs:
  - create
  - patch
{{- end }}
{{- define "flink-operator.certificateSecretRules" }}
- apiGroups:
  - ''
  resourceNames:
  - {{ include "flink-operator.certificateSecret" . }}
  resources:
  - secrets
  verbs:
  - get
  - update
- apiGroups:
  - ''
  resources:
  - secrets
  verbs:
  - create
{{- end }}
{{- define "flink-operator.webhookConfigurationRules" }}
- apiGroups:
  - admissionregistration.k8s.io
  resourceNames:
  - {{ include "flink-operator.fullname" . }}
  resources:
  - validatingwebhookconfigurations
  - mutatingwebhookconfigurations
  verbs:
  - get
  - patch
{{- end }}
{{- define "flink-operator.leaderElectionRules" }}
- apiGroups:
  - coordination.k8s.io
  resourceNames:
  - {{ .Values.leaderElection.leaseName }}
  resources:
  - leases
  verbs:
  - get
  - update
- apiGroups:
  - coordination.k8s.io
  resources:
  - leases
  verbs:
  - create
{{- end }}
