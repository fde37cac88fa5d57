variable "project_id" {
  description = "Google Cloud project of the cluster."
  type        = string
}

variable "region" {
  description = "Region of the cluster and the bucket, e.g. europe-west1."
  type        = string
}

variable "cluster_name" {
  description = "Name of the existing GKE cluster (Workload Identity enabled)."
  type        = string
}

variable "bucket_name" {
  description = "Name of the GCS bucket to create for checkpoints and savepoints."
  type        = string
}

variable "job_namespaces" {
  description = "Existing namespaces FlinkJobs will run in."
  type        = list(string)
  default     = ["default"]
}
