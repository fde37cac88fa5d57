variable "project_id" {
  description = "Google Cloud project of the cluster and the bucket."
  type        = string
}

variable "location" {
  description = "Bucket location: a region (e.g. europe-west1) or a multi-region (EU)."
  type        = string
}

variable "bucket_name" {
  description = "Name of the GCS bucket created for checkpoints and savepoints."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3-63 lower-case letters, digits, dots, underscores or hyphens."
  }
}

variable "kms_key_name" {
  description = "Cloud KMS key (projects/…/cryptoKeys/…) to encrypt the bucket with. Null: Google-managed encryption."
  type        = string
  default     = null
}

variable "access_log_bucket" {
  description = "An existing bucket to write the state bucket's usage logs to (null: none)."
  type        = string
  default     = null
}

variable "soft_delete_retention_days" {
  description = "How long deleted objects stay restorable with soft delete (7-90 days)."
  type        = number
  default     = 7
  validation {
    condition     = var.soft_delete_retention_days >= 7 && var.soft_delete_retention_days <= 90
    error_message = "soft_delete_retention_days must be between 7 and 90."
  }
}

variable "service_account_prefix" {
  description = "Prefix of the Google service accounts' IDs (<prefix>-operator, <prefix>-engine; 6-30 characters in all)."
  type        = string
  default     = "strom"
}

variable "labels" {
  description = "Labels on every Google Cloud resource."
  type        = map(string)
  default     = {}
}

variable "noncurrent_version_retention_days" {
  description = "How long deleted or overwritten checkpoint and savepoint objects stay recoverable as noncurrent versions."
  type        = number
  default     = 30
  validation {
    condition     = var.noncurrent_version_retention_days >= 1
    error_message = "noncurrent_version_retention_days must be at least 1."
  }
}

variable "checkpoint_expiration_days" {
  description = "Expire objects under <bucket>/checkpoints/ (where FlinkJobs keep checkpoints when checkpoints.storage is <bucket_url>/checkpoints) this many days after they were written, as a safety net behind the engines' own retention. Null (default): never. Set it above the longest time a job may stay suspended with upgradeMode last-state, or its newest checkpoint is lost."
  type        = number
  default     = null
}

variable "namespace" {
  description = "Namespace the chart is installed in (the operator's namespace)."
  type        = string
  default     = "strom-system"
}

variable "job_namespaces" {
  description = "Namespaces FlinkJobs run in. They must exist. The operator watches only these (unless watch_all_namespaces) and the engine service account is created in each."
  type        = list(string)
  default     = ["default"]
  validation {
    condition     = length(var.job_namespaces) > 0
    error_message = "job_namespaces must name at least one namespace: the engine service account and its cloud identity are created per namespace."
  }
}

variable "watch_all_namespaces" {
  description = "Let the operator watch every namespace (a ClusterRole) instead of only job_namespaces."
  type        = bool
  default     = false
}

variable "engine_service_account" {
  description = "Name of the engine pods' Kubernetes service account (FlinkJob spec.podTemplate.serviceAccountName)."
  type        = string
  default     = "strom-engine"
}

variable "chart" {
  description = "The Strom chart: a path to charts/strom or a chart name in chart_repository."
  type        = string
  default     = null
}

variable "chart_repository" {
  description = "Helm repository to take the chart from (null: chart is a local path)."
  type        = string
  default     = null
}

variable "chart_version" {
  description = "Chart version, when taken from a repository."
  type        = string
  default     = null
}

variable "image_registry" {
  description = "Registry the operator image is pulled from (empty: the image name as is)."
  type        = string
  default     = ""
}

variable "image_tag" {
  description = "Tag of the Strom images (empty: the chart's appVersion)."
  type        = string
  default     = ""
}

variable "control_plane_enabled" {
  description = "Install the control plane (it needs the operator to watch all namespaces)."
  type        = bool
  default     = false
}

variable "extra_values" {
  description = "More chart values, merged over the ones this module sets."
  type        = any
  default     = {}
}
