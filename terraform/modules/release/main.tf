# The Strom chart with a cloud identity wired into its service accounts. The cloud modules
# (aws, gcp, azure) create the identities and call this one.

locals {
  values = merge(
    {
      image = {
        registry = var.image_registry
        tag      = var.image_tag
      }
      operator = {
        watchNamespaces = var.watch_all_namespaces ? [] : var.job_namespaces
        serviceAccount  = { annotations = var.operator_annotations }
        podLabels       = var.operator_pod_labels
      }
      engine = {
        serviceAccount = {
          create      = true
          name        = var.engine_service_account
          namespaces  = var.job_namespaces
          annotations = var.engine_annotations
        }
      }
      controlPlane = {
        enabled = var.control_plane_enabled
        storage = var.storage_url
      }
    },
    var.extra_values,
  )
}

resource "helm_release" "strom" {
  # The release name fixes the operator's service account name (strom-operator), which the
  # cloud identities trust.
  name             = "strom"
  namespace        = var.namespace
  create_namespace = true
  chart            = coalesce(var.chart, "${path.module}/../../../charts/strom")
  repository       = var.chart_repository
  version          = var.chart_version
  values           = [yamlencode(local.values)]
  atomic           = true
  wait             = true
  timeout          = 600
}
