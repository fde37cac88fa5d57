output "bucket_url" {
  description = "The state bucket. FlinkJobs use <bucket_url>/checkpoints as checkpoints.storage and <bucket_url>/savepoints as savepoints.storage (each job's state goes under <namespace>/<name>/ of them); the control plane's applications go under <bucket_url>/control-plane."
  value       = "abfss://${azurerm_storage_container.state.name}@${azurerm_storage_account.state.name}.dfs.core.windows.net"
}

output "storage_account_id" {
  description = "Resource ID of the storage account."
  value       = azurerm_storage_account.state.id
}

output "operator_client_id" {
  description = "Client ID of the operator's managed identity."
  value       = azurerm_user_assigned_identity.operator.client_id
}

output "engine_client_id" {
  description = "Client ID of the engines' managed identity."
  value       = azurerm_user_assigned_identity.engine.client_id
}

output "engine_service_account" {
  description = "The Kubernetes service account FlinkJobs name in spec.podTemplate.serviceAccountName; their pods also need the label azure.workload.identity/use: \"true\" (spec.podTemplate.labels)."
  value       = var.engine_service_account
}

output "helm_values" {
  description = "The chart values the release was installed with."
  value       = module.release.values
}
