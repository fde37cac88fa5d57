output "values" {
  description = "The chart values the release was installed with."
  value       = local.values
}

output "status" {
  description = "The release's status."
  value       = helm_release.strom.status
}
