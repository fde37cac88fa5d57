output "bucket_url" {
  description = "Where FlinkJobs keep state: use gs://<bucket>/checkpoints/<namespace>/<job> and gs://<bucket>/savepoints/<namespace>/<job>."
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
