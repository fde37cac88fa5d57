# Strom on EKS: an S3 bucket for checkpoints and savepoints, IAM roles for the operator and
# the engines that only their Kubernetes service accounts can assume (IRSA), and the chart.

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  issuer  = trimprefix(var.oidc_issuer_url, "https://")
  kms_key = var.kms_key_arn != null ? var.kms_key_arn : aws_kms_key.state[0].arn
  engine_subjects = [
    for ns in var.job_namespaces : "system:serviceaccount:${ns}:${var.engine_service_account}"
  ]
  operator_subject = "system:serviceaccount:${var.namespace}:strom-operator"
  bucket_arn       = aws_s3_bucket.state.arn
}

resource "aws_kms_key" "state" {
  count                   = var.kms_key_arn == null ? 1 : 0
  description             = "Strom checkpoints and savepoints (${var.cluster_name})"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = var.tags
}

data "aws_caller_identity" "current" {}

# The account administers the key (AWS's default key policy, stated); the roles below use
# it through their own policies.
data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:A key policy's resource "*" is the key itself; this is AWS's default key policy.
  #checkov:skip=CKV_AWS_111:As above.
  #checkov:skip=CKV_AWS_356:As above.
  statement {
    sid       = "AccountAdministersTheKey"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_s3_bucket" "state" {
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice with its own cost; docs/runbooks.md describes it, this module does not impose it.
  #checkov:skip=CKV2_AWS_62:Nothing consumes bucket events; checkpoints are found by listing.
  #checkov:skip=CKV_AWS_18:Access logs go to a bucket the user names (access_log_bucket); none exists to default to.
  bucket = var.bucket_name
  tags   = var.tags
}

resource "aws_s3_bucket_logging" "state" {
  count         = var.access_log_bucket == null ? 0 : 1
  bucket        = aws_s3_bucket.state.id
  target_bucket = var.access_log_bucket
  target_prefix = "${var.bucket_name}/"
}

resource "aws_s3_bucket_ownership_controls" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket                  = aws_s3_bucket.state.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = local.kms_key
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket     = aws_s3_bucket.state.id
  depends_on = [aws_s3_bucket_versioning.state]

  # Deleted checkpoints and savepoints stay recoverable for a while, then go. A writer that
  # died mid-upload leaves parts behind; they are never part of a checkpoint.
  rule {
    id     = "noncurrent-versions-and-incomplete-uploads"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_retention_days
    }
    expiration {
      expired_object_delete_marker = true
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  # Off unless checkpoint_expiration_days is set.
  rule {
    id     = "expire-old-checkpoints"
    status = var.checkpoint_expiration_days == null ? "Disabled" : "Enabled"
    filter {
      prefix = "checkpoints/"
    }
    expiration {
      days = coalesce(var.checkpoint_expiration_days, 36500)
    }
  }
}

# TLS only.
data "aws_iam_policy_document" "bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [local.bucket_arn, "${local.bucket_arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "state" {
  bucket     = aws_s3_bucket.state.id
  policy     = data.aws_iam_policy_document.bucket.json
  depends_on = [aws_s3_bucket_public_access_block.state]
}

# IRSA: a role only the named service accounts of this cluster can assume.
data "aws_iam_policy_document" "assume_operator" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:sub"
      values   = [local.operator_subject]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "assume_engine" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:sub"
      values   = local.engine_subjects
    }
    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "operator" {
  name               = "${var.cluster_name}-strom-operator"
  assume_role_policy = data.aws_iam_policy_document.assume_operator.json
  tags               = var.tags
}

resource "aws_iam_role" "engine" {
  name               = "${var.cluster_name}-strom-engine"
  assume_role_policy = data.aws_iam_policy_document.assume_engine.json
  tags               = var.tags
}

# The operator reads savepoint manifests and disposes of savepoints past their retention.
data "aws_iam_policy_document" "operator" {
  statement {
    sid       = "List"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]
  }
  statement {
    sid       = "ReadAndDispose"
    actions   = ["s3:GetObject", "s3:DeleteObject"]
    resources = ["${local.bucket_arn}/*"]
  }
  statement {
    sid       = "Decrypt"
    actions   = ["kms:Decrypt"]
    resources = [local.kms_key]
  }
}

# The engines write checkpoints and savepoints (multipart for large state), read them to
# restore, and delete the ones past retention.
data "aws_iam_policy_document" "engine" {
  statement {
    sid       = "List"
    actions   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [local.bucket_arn]
  }
  statement {
    sid = "ReadWrite"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${local.bucket_arn}/*"]
  }
  statement {
    sid       = "Encrypt"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [local.kms_key]
  }
}

resource "aws_iam_role_policy" "operator" {
  name   = "strom-state"
  role   = aws_iam_role.operator.id
  policy = data.aws_iam_policy_document.operator.json
}

resource "aws_iam_role_policy" "engine" {
  name   = "strom-state"
  role   = aws_iam_role.engine.id
  policy = data.aws_iam_policy_document.engine.json
}

module "release" {
  source = "../release"

  namespace              = var.namespace
  job_namespaces         = var.job_namespaces
  watch_all_namespaces   = var.watch_all_namespaces
  engine_service_account = var.engine_service_account
  operator_annotations   = { "eks.amazonaws.com/role-arn" = aws_iam_role.operator.arn }
  engine_annotations     = { "eks.amazonaws.com/role-arn" = aws_iam_role.engine.arn }
  storage_url            = "s3://${aws_s3_bucket.state.bucket}/control-plane"
  chart                  = var.chart
  chart_repository       = var.chart_repository
  chart_version          = var.chart_version
  image_registry         = var.image_registry
  image_tag              = var.image_tag
  control_plane_enabled  = var.control_plane_enabled
  extra_values           = var.extra_values

  depends_on = [aws_iam_role_policy.operator, aws_iam_role_policy.engine]
}
