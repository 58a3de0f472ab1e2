{{/* Labels every object carries; "component" adds app.kubernetes.io/component. */}}
{{- define "kubeshark.labels" -}}
app.kubernetes.io/name: kubeshark
app.kubernetes.io/instance: {{ .root.Release.Name | quote }}
app.kubernetes.io/version: {{ .root.Values.tap.docker.tag | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service | quote }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{- define "kubeshark.selector" -}}
app.kubernetes.io/name: kubeshark
app.kubernetes.io/instance: {{ .root.Release.Name | quote }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "kubeshark.image" -}}
{{ printf "%s/kubeshark:%s" .Values.tap.docker.registry .Values.tap.docker.tag | quote }}
{{- end }}

{{/* Capabilities of the worker: packet capture, plus eBPF for AF_XDP and TLS. */}}
{{- define "kubeshark.capabilities" -}}
{{- $caps := list "NET_RAW" "NET_ADMIN" -}}
{{- if eq .Values.tap.packetCapture "af_xdp" -}}{{- $caps = concat $caps (list "BPF" "PERFMON" "SYS_RESOURCE") -}}{{- end -}}
{{- if .Values.tap.tls -}}
{{- range (list "BPF" "PERFMON" "SYS_PTRACE" "SYS_RESOURCE") -}}
{{- if not (has . $caps) -}}{{- $caps = append $caps . -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml $caps -}}
{{- end }}

{{- define "kubeshark.mountsBpf" -}}
{{- if and (or (eq .Values.tap.packetCapture "af_xdp") .Values.tap.tls) .Values.tap.mountBpf -}}true{{- end -}}
{{- end }}
