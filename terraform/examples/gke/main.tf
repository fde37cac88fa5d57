# Strom on an existing GKE cluster: `terraform apply`, then apply flinkjob.yaml (README.md).

provider "google" {
  project = var.project_id
  region  = var.region
}

data "google_client_config" "current" {}

data "google_container_cluster" "this" {
  name     = var.cluster_name
  location = var.region
}

provider "helm" {
  kubernetes {
    host                   = "https://${data.google_container_cluster.this.endpoint}"
    cluster_ca_certificate = base64decode(data.google_container_cluster.this.master_auth[0].cluster_ca_certificate)
    token                  = data.google_client_config.current.access_token
  }
}

module "strom" {
  source = "../../modules/gcp"

  project_id     = var.project_id
  location       = var.region
  bucket_name    = var.bucket_name
  job_namespaces = var.job_namespaces
  labels         = { "part-of" = "strom" }
}
