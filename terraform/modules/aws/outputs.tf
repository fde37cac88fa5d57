output "bucket_url" {
  description = "The state bucket. FlinkJobs use <bucket_url>/checkpoints as checkpoints.storage and <bucket_url>/savepoints as savepoints.storage (each job's state goes under <namespace>/<name>/ of them); the control plane's applications go under <bucket_url>/control-plane."
  value       = "s3://${aws_s3_bucket.state.bucket}"
}

output "region" {
  description = "The bucket's region: set AWS_REGION in FlinkJobs' spec.podTemplate.env to it."
  value       = data.aws_region.current.name
}

output "bucket_arn" {
  description = "ARN of the state bucket."
  value       = aws_s3_bucket.state.arn
}

output "kms_key_arn" {
  description = "The key the bucket is encrypted with."
  value       = local.kms_key
}

output "operator_role_arn" {
  description = "IAM role of the operator's service account."
  value       = aws_iam_role.operator.arn
}

output "engine_role_arn" {
  description = "IAM role of the engine pods' service account."
  value       = aws_iam_role.engine.arn
}

output "engine_service_account" {
  description = "The service account FlinkJobs name in spec.podTemplate.serviceAccountName."
  value       = var.engine_service_account
}

output "helm_values" {
  description = "The chart values the release was installed with."
  value       = module.release.values
}
