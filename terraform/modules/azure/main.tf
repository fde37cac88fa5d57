# Strom on AKS: a storage account and blob container for checkpoints and savepoints, managed
# identities for the operator and the engines with custom roles on that container only,
# federated credentials that let just their Kubernetes service accounts act as them (Azure
# Workload Identity), and the chart.

locals {
  container_scope = "${azurerm_storage_account.state.id}/blobServices/default/containers/${azurerm_storage_container.state.name}"
  blobs           = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
  audience        = ["api://AzureADTokenExchange"]
}

resource "azurerm_storage_account" "state" {
  #checkov:skip=CKV_AZURE_59:The public endpoint stays on, closed by network_rules (default Deny) to the cluster's subnets and the listed IP ranges; a private endpoint is the user's network's choice.
  #checkov:skip=CKV2_AZURE_33:As above: private endpoints belong to the user's network design.
  #checkov:skip=CKV_AZURE_206:ZRS by default (checkpoints are transient, savepoints are versioned and soft-deleted); set replication_type to GZRS or RAGZRS for regional failover.
  #checkov:skip=CKV_AZURE_33:The account has no queues.
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys with infrastructure (double) encryption; customer-managed keys need a Key Vault this module does not own.
  name                              = var.storage_account_name
  resource_group_name               = var.resource_group_name
  location                          = var.location
  account_kind                      = "StorageV2"
  account_tier                      = "Standard"
  account_replication_type          = var.replication_type
  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  allow_nested_items_to_be_public   = false
  shared_access_key_enabled         = false # Entra ID only: no account keys to leak
  infrastructure_encryption_enabled = true
  tags                              = var.tags

  network_rules {
    default_action             = "Deny"
    bypass                     = ["AzureServices"]
    virtual_network_subnet_ids = var.allowed_subnet_ids
    ip_rules                   = var.allowed_ip_ranges
  }

  blob_properties {
    versioning_enabled = true
    delete_retention_policy {
      days = var.soft_delete_retention_days
    }
    container_delete_retention_policy {
      days = var.soft_delete_retention_days
    }
  }
}

resource "azurerm_storage_container" "state" {
  #checkov:skip=CKV2_AZURE_21:Read logging needs a diagnostic setting to a Log Analytics workspace the user owns.
  name                  = var.container_name
  storage_account_id    = azurerm_storage_account.state.id
  container_access_type = "private"
}

resource "azurerm_storage_management_policy" "state" {
  storage_account_id = azurerm_storage_account.state.id

  # Overwritten or deleted blobs are kept as previous versions for a while, then go.
  rule {
    name    = "previous-versions"
    enabled = true
    filters {
      blob_types   = ["blockBlob"]
      prefix_match = ["${azurerm_storage_container.state.name}/"]
    }
    actions {
      version {
        delete_after_days_since_creation = var.noncurrent_version_retention_days
      }
    }
  }

  dynamic "rule" {
    for_each = var.checkpoint_expiration_days == null ? [] : [var.checkpoint_expiration_days]
    content {
      name    = "expire-old-checkpoints"
      enabled = true
      filters {
        blob_types   = ["blockBlob"]
        prefix_match = ["${azurerm_storage_container.state.name}/checkpoints/"]
      }
      actions {
        base_blob {
          delete_after_days_since_modification_greater_than = rule.value
        }
      }
    }
  }
}

# The operator reads savepoint manifests and disposes of savepoints past their retention.
resource "azurerm_role_definition" "operator" {
  name        = "${var.identity_prefix}-operator-${var.storage_account_name}"
  scope       = local.container_scope
  description = "Strom operator: read and dispose of savepoints"
  permissions {
    data_actions = ["${local.blobs}/read", "${local.blobs}/delete"]
  }
  assignable_scopes = [local.container_scope]
}

# The engines write checkpoints and savepoints, read them to restore, and delete the ones
# past retention.
resource "azurerm_role_definition" "engine" {
  name        = "${var.identity_prefix}-engine-${var.storage_account_name}"
  scope       = local.container_scope
  description = "Strom engine: read and write checkpoints and savepoints"
  permissions {
    data_actions = [
      "${local.blobs}/read",
      "${local.blobs}/write",
      "${local.blobs}/add/action",
      "${local.blobs}/delete",
    ]
  }
  assignable_scopes = [local.container_scope]
}

resource "azurerm_user_assigned_identity" "operator" {
  name                = "${var.identity_prefix}-operator"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags
}

resource "azurerm_user_assigned_identity" "engine" {
  name                = "${var.identity_prefix}-engine"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags
}

resource "azurerm_role_assignment" "operator" {
  scope              = local.container_scope
  role_definition_id = azurerm_role_definition.operator.role_definition_resource_id
  principal_id       = azurerm_user_assigned_identity.operator.principal_id
  principal_type     = "ServicePrincipal"
}

resource "azurerm_role_assignment" "engine" {
  scope              = local.container_scope
  role_definition_id = azurerm_role_definition.engine.role_definition_resource_id
  principal_id       = azurerm_user_assigned_identity.engine.principal_id
  principal_type     = "ServicePrincipal"
}

# Workload Identity: only these Kubernetes service accounts may act as the identities.
resource "azurerm_federated_identity_credential" "operator" {
  name                = "kubernetes-${var.namespace}-strom-operator"
  resource_group_name = var.resource_group_name
  parent_id           = azurerm_user_assigned_identity.operator.id
  issuer              = var.oidc_issuer_url
  subject             = "system:serviceaccount:${var.namespace}:strom-operator"
  audience            = local.audience
}

resource "azurerm_federated_identity_credential" "engine" {
  for_each            = toset(var.job_namespaces)
  name                = "kubernetes-${each.value}-${var.engine_service_account}"
  resource_group_name = var.resource_group_name
  parent_id           = azurerm_user_assigned_identity.engine.id
  issuer              = var.oidc_issuer_url
  subject             = "system:serviceaccount:${each.value}:${var.engine_service_account}"
  audience            = local.audience
}

module "release" {
  source = "../release"

  namespace              = var.namespace
  job_namespaces         = var.job_namespaces
  watch_all_namespaces   = var.watch_all_namespaces
  engine_service_account = var.engine_service_account
  operator_annotations   = { "azure.workload.identity/client-id" = azurerm_user_assigned_identity.operator.client_id }
  engine_annotations     = { "azure.workload.identity/client-id" = azurerm_user_assigned_identity.engine.client_id }
  operator_pod_labels    = { "azure.workload.identity/use" = "true" }
  storage_url            = "abfss://${azurerm_storage_container.state.name}@${azurerm_storage_account.state.name}.dfs.core.windows.net/control-plane"
  chart                  = var.chart
  chart_repository       = var.chart_repository
  chart_version          = var.chart_version
  image_registry         = var.image_registry
  image_tag              = var.image_tag
  control_plane_enabled  = var.control_plane_enabled
  extra_values           = var.extra_values

  depends_on = [
    azurerm_role_assignment.operator,
    azurerm_role_assignment.engine,
    azurerm_federated_identity_credential.operator,
    azurerm_federated_identity_credential.engine,
  ]
}
