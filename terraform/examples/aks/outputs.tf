output "bucket_url" {
  description = "The state bucket; FlinkJobs keep checkpoints and savepoints under it."
  value       = module.strom.bucket_url
}

output "engine_service_account" {
  description = "The service account FlinkJobs run as."
  value       = module.strom.engine_service_account
}

output "helm_values" {
  description = "The chart values installed."
  value       = module.strom.helm_values
}
