# Strom on GKE: a GCS bucket for checkpoints and savepoints, Google service accounts for the
# operator and the engines with custom roles on that bucket only, Workload Identity bindings
# that let just their Kubernetes service accounts act as them, and the chart.

locals {
  workload_pool   = "${var.project_id}.svc.id.goog"
  operator_member = "serviceAccount:${local.workload_pool}[${var.namespace}/strom-operator]"
  engine_members = {
    for ns in var.job_namespaces : ns => "serviceAccount:${local.workload_pool}[${ns}/${var.engine_service_account}]"
  }
  role_prefix = replace(var.service_account_prefix, "-", "_")
}

resource "google_storage_bucket" "state" {
  #checkov:skip=CKV_GCP_62:Usage logs go to a bucket the user names (access_log_bucket); Cloud Audit Logs record data access otherwise.
  project                     = var.project_id
  name                        = var.bucket_name
  location                    = var.location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = var.labels

  versioning {
    enabled = true
  }

  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_retention_days * 86400
  }

  dynamic "logging" {
    for_each = var.access_log_bucket == null ? [] : [var.access_log_bucket]
    content {
      log_bucket = logging.value
    }
  }

  dynamic "encryption" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }

  # Overwritten or deleted objects are kept as noncurrent versions for a while, then go.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_retention_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  # A writer that died mid-upload leaves parts behind; they are never part of a checkpoint.
  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  dynamic "lifecycle_rule" {
    for_each = var.checkpoint_expiration_days == null ? [] : [var.checkpoint_expiration_days]
    content {
      condition {
        age            = lifecycle_rule.value
        matches_prefix = ["checkpoints/"]
        with_state     = "LIVE"
      }
      action {
        type = "Delete"
      }
    }
  }
}

# The operator reads savepoint manifests and disposes of savepoints past their retention.
resource "google_project_iam_custom_role" "operator" {
  project     = var.project_id
  role_id     = "${local.role_prefix}_operator"
  title       = "Strom operator: read and dispose of savepoints"
  permissions = ["storage.objects.get", "storage.objects.list", "storage.objects.delete"]
}

# The engines write checkpoints and savepoints (multipart for large state), read them to
# restore, and delete the ones past retention.
resource "google_project_iam_custom_role" "engine" {
  project = var.project_id
  role_id = "${local.role_prefix}_engine"
  title   = "Strom engine: read and write checkpoints and savepoints"
  permissions = [
    "storage.objects.get",
    "storage.objects.list",
    "storage.objects.create",
    "storage.objects.delete",
    "storage.multipartUploads.create",
    "storage.multipartUploads.abort",
    "storage.multipartUploads.listParts",
  ]
}

resource "google_service_account" "operator" {
  project      = var.project_id
  account_id   = "${var.service_account_prefix}-operator"
  display_name = "Strom operator"
}

resource "google_service_account" "engine" {
  project      = var.project_id
  account_id   = "${var.service_account_prefix}-engine"
  display_name = "Strom engines"
}

resource "google_storage_bucket_iam_member" "operator" {
  bucket = google_storage_bucket.state.name
  role   = google_project_iam_custom_role.operator.id
  member = google_service_account.operator.member
}

resource "google_storage_bucket_iam_member" "engine" {
  bucket = google_storage_bucket.state.name
  role   = google_project_iam_custom_role.engine.id
  member = google_service_account.engine.member
}

# Workload Identity: only these Kubernetes service accounts may act as the Google ones.
resource "google_service_account_iam_member" "operator_workload_identity" {
  service_account_id = google_service_account.operator.name
  role               = "roles/iam.workloadIdentityUser"
  member             = local.operator_member
}

resource "google_service_account_iam_member" "engine_workload_identity" {
  for_each           = local.engine_members
  service_account_id = google_service_account.engine.name
  role               = "roles/iam.workloadIdentityUser"
  member             = each.value
}

module "release" {
  source = "../release"

  namespace              = var.namespace
  job_namespaces         = var.job_namespaces
  watch_all_namespaces   = var.watch_all_namespaces
  engine_service_account = var.engine_service_account
  operator_annotations   = { "iam.gke.io/gcp-service-account" = google_service_account.operator.email }
  engine_annotations     = { "iam.gke.io/gcp-service-account" = google_service_account.engine.email }
  storage_url            = "gs://${google_storage_bucket.state.name}/control-plane"
  chart                  = var.chart
  chart_repository       = var.chart_repository
  chart_version          = var.chart_version
  image_registry         = var.image_registry
  image_tag              = var.image_tag
  control_plane_enabled  = var.control_plane_enabled
  extra_values           = var.extra_values

  depends_on = [
    google_storage_bucket_iam_member.operator,
    google_storage_bucket_iam_member.engine,
    google_service_account_iam_member.operator_workload_identity,
    google_service_account_iam_member.engine_workload_identity,
  ]
}
