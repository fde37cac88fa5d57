variable "namespace" {
  description = "Namespace the chart is installed in (created if absent)."
  type        = string
}

variable "job_namespaces" {
  description = "Namespaces FlinkJobs run in (they must exist): the engine service account is created in each."
  type        = list(string)
}

variable "watch_all_namespaces" {
  description = "The operator watches every namespace (else only job_namespaces)."
  type        = bool
}

variable "engine_service_account" {
  description = "Name of the engine pods' service account."
  type        = string
}

variable "operator_annotations" {
  description = "Annotations of the operator's service account: its cloud identity."
  type        = map(string)
}

variable "engine_annotations" {
  description = "Annotations of the engines' service account: their cloud identity."
  type        = map(string)
}

variable "operator_pod_labels" {
  description = "Labels of the operator pods (Azure Workload Identity needs one)."
  type        = map(string)
  default     = {}
}

variable "storage_url" {
  description = "The state bucket's URL; the control plane's default storage."
  type        = string
}

variable "chart" {
  description = "A path to charts/strom or a chart name in chart_repository (null: this repository's chart)."
  type        = string
  default     = null
}

variable "chart_repository" {
  description = "Helm repository of the chart (null: chart is a local path)."
  type        = string
  default     = null
}

variable "chart_version" {
  description = "Chart version, when taken from a repository."
  type        = string
  default     = null
}

variable "image_registry" {
  description = "Registry of the Strom images (empty: the names as they are)."
  type        = string
  default     = ""
}

variable "image_tag" {
  description = "Tag of the Strom images (empty: the chart's appVersion)."
  type        = string
  default     = ""
}

variable "control_plane_enabled" {
  description = "Install the control plane."
  type        = bool
  default     = false
}

variable "extra_values" {
  description = "More chart values, merged over these (top-level keys replace)."
  type        = any
  default     = {}
}
