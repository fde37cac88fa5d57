variable "region" {
  description = "AWS region of the cluster."
  type        = string
}

variable "cluster_name" {
  description = "Name of the existing EKS cluster (it needs an IAM OIDC provider for IRSA)."
  type        = string
}

variable "bucket_name" {
  description = "Name of the S3 bucket to create for checkpoints and savepoints."
  type        = string
}

variable "job_namespaces" {
  description = "Existing namespaces FlinkJobs will run in."
  type        = list(string)
  default     = ["default"]
}
