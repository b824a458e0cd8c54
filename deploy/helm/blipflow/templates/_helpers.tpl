{{/*
blipflow.name is the chart name, or nameOverride.
*/}}
{{- define "blipflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
blipflow.fullname is the prefix of every resource name: fullnameOverride, or
"<release>-<chart>" (just the release when it already holds the chart name).
*/}}
{{- define "blipflow.fullname" -}}
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

{{/*
blipflow.component returns "<fullname>-<suffix>" within 63 characters;
call with (list $ "suffix").
*/}}
{{- define "blipflow.component" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" (include "blipflow.fullname" $root | trunc 50 | trimSuffix "-") (index . 1) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
blipflow.labels are the common labels of every object.
*/}}
{{- define "blipflow.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "blipflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: blipflow
{{- end }}

{{/*
blipflow.selectorLabels select one component's pods; call with (list $ "component").
*/}}
{{- define "blipflow.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "blipflow.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/*
blipflow.serviceAccountName is the ServiceAccount the pods run as.
*/}}
{{- define "blipflow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "blipflow.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
blipflow.image is "<registry>/<repository>:<tag>" of a blipflow image; call
with (list $ .Values.worker.image). The tag is image.tag or the appVersion,
never "latest".
*/}}
{{- define "blipflow.image" -}}
{{- $root := index . 0 }}
{{- $img := index . 1 }}
{{- $tag := toString (default $root.Chart.AppVersion $root.Values.image.tag) }}
{{- if or (eq $tag "") (eq $tag "latest") }}
{{- fail "image.tag must name a release (empty means the chart's appVersion); \"latest\" is not allowed" }}
{{- end }}
{{- $repo := required "image repository is required" $img.repository }}
{{- with $root.Values.image.registry }}
{{- $repo = printf "%s/%s" (trimSuffix "/" .) $repo }}
{{- end }}
{{- printf "%s:%s" $repo $tag }}
{{- end }}

{{/*
blipflow.natsURL is the NATS URL the coordinator and workers dial.
*/}}
{{- define "blipflow.natsURL" -}}
{{- if .Values.nats.url }}
{{- .Values.nats.url }}
{{- else if and .Values.nats.enabled (gt (int .Values.nats.replicas) 1) }}
{{- $name := include "blipflow.component" (list . "nats") }}
{{- $urls := list }}
{{- range $i := until (int .Values.nats.replicas) }}
{{- $urls = append $urls (printf "nats://%s-%d.%s-headless.%s.svc:%d" $name $i $name $.Release.Namespace (int $.Values.nats.clientPort)) }}
{{- end }}
{{- join "," $urls }}
{{- else if .Values.nats.enabled }}
{{- printf "nats://%s.%s.svc:%d" (include "blipflow.component" (list . "nats")) .Release.Namespace (int .Values.nats.clientPort) }}
{{- else }}
{{- fail "nats.url is required when nats.enabled is false" }}
{{- end }}
{{- end }}

{{/*
blipflow.natsMonitoringEndpoint is host:port of the NATS monitoring server,
for the KEDA trigger.
*/}}
{{- define "blipflow.natsMonitoringEndpoint" -}}
{{- if .Values.nats.monitoringEndpoint }}
{{- .Values.nats.monitoringEndpoint }}
{{- else if and .Values.nats.enabled (not .Values.nats.url) }}
{{- printf "%s.%s.svc:%d" (include "blipflow.component" (list . "nats")) .Release.Namespace (int .Values.nats.monitoringPort) }}
{{- else }}
{{- fail "nats.monitoringEndpoint is required for worker.autoscaling with an external NATS (nats.url)" }}
{{- end }}
{{- end }}

{{/*
blipflow.s3SecretName is the Secret with S3 credentials, or "" when the pods
rely on their identity.
*/}}
{{- define "blipflow.s3SecretName" -}}
{{- if .Values.s3.existingSecret }}
{{- .Values.s3.existingSecret }}
{{- else if or .Values.s3.accessKeyId .Values.s3.secretAccessKey }}
{{- include "blipflow.component" (list . "s3") }}
{{- end }}
{{- end }}

{{/*
blipflow.s3SessionTokenKey is the Secret key of the S3 session token, or "".
*/}}
{{- define "blipflow.s3SessionTokenKey" -}}
{{- if .Values.s3.existingSecret }}
{{- .Values.s3.secretKeys.sessionToken }}
{{- else if .Values.s3.sessionToken }}
{{- default "AWS_SESSION_TOKEN" .Values.s3.secretKeys.sessionToken }}
{{- end }}
{{- end }}

{{/*
blipflow.hfSecretName is the Secret with the Hugging Face token, or "".
*/}}
{{- define "blipflow.hfSecretName" -}}
{{- if .Values.huggingface.existingSecret }}
{{- .Values.huggingface.existingSecret }}
{{- else if .Values.huggingface.token }}
{{- include "blipflow.component" (list . "huggingface") }}
{{- end }}
{{- end }}

{{/*
blipflow.storageEnv is the environment both binaries share: NATS, S3
settings and credentials (from the Secret), logging.
*/}}
{{- define "blipflow.storageEnv" -}}
- name: NATS_URL
  value: {{ include "blipflow.natsURL" . | quote }}
{{- with include "blipflow.jetstreamReplicas" . }}
- name: BLIPFLOW_REPLICAS
  value: {{ . | quote }}
{{- end }}
{{- with .Values.s3.region }}
- name: AWS_REGION
  value: {{ . | quote }}
{{- end }}
{{- with .Values.s3.endpoint }}
- name: BLIPFLOW_S3_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- if ne (toString .Values.s3.pathStyle) "" }}
- name: BLIPFLOW_S3_PATH_STYLE
  value: {{ toString .Values.s3.pathStyle | quote }}
{{- end }}
{{- with include "blipflow.s3SecretName" . }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.s3.secretKeys.accessKeyId }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.s3.secretKeys.secretAccessKey }}
{{- with include "blipflow.s3SessionTokenKey" $ }}
- name: AWS_SESSION_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "blipflow.s3SecretName" $ }}
      key: {{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/*
blipflow.hfEnv is the Hugging Face environment of the worker and its
download init container; HF_HOME lies on the model volume.
*/}}
{{- define "blipflow.hfEnv" -}}
- name: HF_HOME
  value: {{ printf "%s/huggingface" (trimSuffix "/" .Values.model.mountPath) | quote }}
{{- with .Values.huggingface.endpoint }}
- name: HF_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with include "blipflow.hfSecretName" . }}
- name: HF_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.huggingface.tokenKey }}
{{- end }}
{{- end }}

{{/*
blipflow.modelClaimName is the PersistentVolumeClaim of the model volume, or
"" for a per-pod emptyDir.
*/}}
{{- define "blipflow.modelClaimName" -}}
{{- if .Values.model.persistence.existingClaim }}
{{- .Values.model.persistence.existingClaim }}
{{- else if .Values.model.persistence.enabled }}
{{- include "blipflow.component" (list . "model") }}
{{- end }}
{{- end }}

{{/*
blipflow.modelPull is "true" when an init container downloads model.name.
*/}}
{{- define "blipflow.modelPull" -}}
{{- if and .Values.model.pull.enabled (not (hasPrefix "/" .Values.model.name)) }}true{{ end }}
{{- end }}

{{/*
blipflow.jobID is job.id, or one derived from the dataset so that the same
input, output, task, prompt, shard size and extra arguments keep the same
id (and a change to any of them makes a new job).
*/}}
{{- define "blipflow.jobID" -}}
{{- if .Values.job.id }}
{{- .Values.job.id }}
{{- else }}
{{- list .Values.job.input .Values.job.output .Values.job.task .Values.job.prompt (toString .Values.job.shardSize) (join " " .Values.job.extraArgs) | join "\n" | sha256sum | trunc 12 | printf "job-%s" }}
{{- end }}
{{- end }}

{{/*
blipflow.jetstreamReplicas is the replica count of the pipeline's streams
and job bucket: nats.jetstreamReplicas, else the release's NATS cluster
size capped at 3 ("" for an external NATS without the setting: the
binaries keep what exists).
*/}}
{{- define "blipflow.jetstreamReplicas" -}}
{{- if .Values.nats.jetstreamReplicas }}
{{- .Values.nats.jetstreamReplicas }}
{{- else if and .Values.nats.enabled (not .Values.nats.url) (gt (int .Values.nats.replicas) 1) }}
{{- min 3 (int .Values.nats.replicas) }}
{{- end }}
{{- end }}
