variable "cluster_name" {
  description = "Name of the existing EKS cluster Strom runs on (used in resource names)."
  type        = string
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider (module.eks.oidc_provider_arn, or aws_iam_openid_connect_provider.<x>.arn)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/.+", var.oidc_provider_arn))
    error_message = "oidc_provider_arn must be an IAM OIDC provider ARN, e.g. arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC."
  }
}

variable "oidc_issuer_url" {
  description = "The cluster's OIDC issuer URL (aws_eks_cluster.<x>.identity[0].oidc[0].issuer)."
  type        = string
  validation {
    condition     = startswith(var.oidc_issuer_url, "https://")
    error_message = "oidc_issuer_url must start with https://."
  }
}

variable "bucket_name" {
  description = "Name of the S3 bucket created for checkpoints and savepoints."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3-63 lower-case letters, digits, dots or hyphens."
  }
}

variable "kms_key_arn" {
  description = "KMS key to encrypt the bucket with. Null: a key is created (rotation on)."
  type        = string
  default     = null
}

variable "access_log_bucket" {
  description = "An existing bucket to write the state bucket's access logs to (null: no access logs)."
  type        = string
  default     = null
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

variable "tags" {
  description = "Tags on every AWS resource."
  type        = map(string)
  default     = {}
}
