output "bucket_url" {
  description = "The state bucket. FlinkJobs use <bucket_url>/checkpoints as checkpoints.storage and <bucket_url>/savepoints as savepoints.storage (each job's state goes under <namespace>/<name>/ of them); the control plane's applications go under <bucket_url>/control-plane."
  value       = "gs://${google_storage_bucket.state.name}"
}

output "operator_service_account_email" {
  description = "Google service account the operator acts as."
  value       = google_service_account.operator.email
}

output "engine_service_account_email" {
  description = "Google service account the engine pods act as."
  value       = google_service_account.engine.email
}

output "engine_service_account" {
  description = "The Kubernetes service account FlinkJobs name in spec.podTemplate.serviceAccountName."
  value       = var.engine_service_account
}

output "helm_values" {
  description = "The chart values the release was installed with."
  value       = module.release.values
}
