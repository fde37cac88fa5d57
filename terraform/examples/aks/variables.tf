variable "subscription_id" {
  description = "Azure subscription of the cluster."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group of the existing AKS cluster; the storage account and identities go there too."
  type        = string
}

variable "cluster_name" {
  description = "Name of the existing AKS cluster (OIDC issuer and workload identity enabled)."
  type        = string
}

variable "storage_account_name" {
  description = "Name of the storage account to create for checkpoints and savepoints (globally unique)."
  type        = string
}

variable "job_namespaces" {
  description = "Existing namespaces FlinkJobs will run in."
  type        = list(string)
  default     = ["default"]
}

variable "terraform_ip_ranges" {
  description = "Public IP ranges Terraform runs from (it creates the blob container through the storage firewall)."
  type        = list(string)
}
