# Strom on an existing AKS cluster: `terraform apply`, then apply flinkjob.yaml (README.md).

provider "azurerm" {
  features {}
  subscription_id = var.subscription_id
  # The storage account allows Entra ID only (no shared keys), Terraform included.
  storage_use_azuread = true
}

data "azurerm_kubernetes_cluster" "this" {
  name                = var.cluster_name
  resource_group_name = var.resource_group_name
}

provider "helm" {
  kubernetes {
    host                   = data.azurerm_kubernetes_cluster.this.kube_config[0].host
    client_certificate     = base64decode(data.azurerm_kubernetes_cluster.this.kube_config[0].client_certificate)
    client_key             = base64decode(data.azurerm_kubernetes_cluster.this.kube_config[0].client_key)
    cluster_ca_certificate = base64decode(data.azurerm_kubernetes_cluster.this.kube_config[0].cluster_ca_certificate)
  }
}

module "strom" {
  source = "../../modules/azure"

  resource_group_name  = var.resource_group_name
  location             = data.azurerm_kubernetes_cluster.this.location
  oidc_issuer_url      = data.azurerm_kubernetes_cluster.this.oidc_issuer_url
  storage_account_name = var.storage_account_name
  allowed_subnet_ids   = compact([data.azurerm_kubernetes_cluster.this.agent_pool_profile[0].vnet_subnet_id])
  allowed_ip_ranges    = var.terraform_ip_ranges
  job_namespaces       = var.job_namespaces
  tags                 = { "part-of" = "strom" }
}
