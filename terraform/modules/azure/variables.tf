variable "resource_group_name" {
  description = "Existing resource group for the storage account and the identities."
  type        = string
}

variable "location" {
  description = "Azure region, e.g. westeurope."
  type        = string
}

variable "oidc_issuer_url" {
  description = "The AKS cluster's OIDC issuer URL (azurerm_kubernetes_cluster.<x>.oidc_issuer_url); the cluster needs oidc_issuer_enabled and workload_identity_enabled."
  type        = string
  validation {
    condition     = startswith(var.oidc_issuer_url, "https://")
    error_message = "oidc_issuer_url must start with https://."
  }
}

variable "storage_account_name" {
  description = "Name of the storage account created for checkpoints and savepoints (3-24 lower-case letters and digits, globally unique)."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.storage_account_name))
    error_message = "storage_account_name must be 3-24 lower-case letters and digits."
  }
}

variable "allowed_subnet_ids" {
  description = "Subnets allowed to reach the storage account: the cluster's node subnets (each needs the Microsoft.Storage service endpoint)."
  type        = list(string)
}

variable "allowed_ip_ranges" {
  description = "Public IP ranges allowed to reach the storage account, e.g. where Terraform runs (it creates the container through the data plane)."
  type        = list(string)
  default     = []
}

variable "container_name" {
  description = "Blob container for the state."
  type        = string
  default     = "strom-state"
}

variable "replication_type" {
  description = "Storage account replication: LRS, ZRS, GRS, RAGRS, GZRS or RAGZRS."
  type        = string
  default     = "ZRS"
  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "RAGRS", "GZRS", "RAGZRS"], var.replication_type)
    error_message = "replication_type must be one of LRS, ZRS, GRS, RAGRS, GZRS, RAGZRS."
  }
}

variable "soft_delete_retention_days" {
  description = "How long deleted blobs and containers stay restorable (1-365 days)."
  type        = number
  default     = 30
  validation {
    condition     = var.soft_delete_retention_days >= 1 && var.soft_delete_retention_days <= 365
    error_message = "soft_delete_retention_days must be between 1 and 365."
  }
}

variable "identity_prefix" {
  description = "Prefix of the managed identities' names (<prefix>-operator, <prefix>-engine)."
  type        = string
  default     = "strom"
}

variable "tags" {
  description = "Tags on every Azure resource."
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
