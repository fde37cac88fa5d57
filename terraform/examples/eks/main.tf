# Strom on an existing EKS cluster: `terraform apply`, then apply flinkjob.yaml (README.md).

provider "aws" {
  region = var.region
}

data "aws_eks_cluster" "this" {
  name = var.cluster_name
}

data "aws_eks_cluster_auth" "this" {
  name = var.cluster_name
}

data "aws_iam_openid_connect_provider" "this" {
  url = data.aws_eks_cluster.this.identity[0].oidc[0].issuer
}

provider "helm" {
  kubernetes {
    host                   = data.aws_eks_cluster.this.endpoint
    cluster_ca_certificate = base64decode(data.aws_eks_cluster.this.certificate_authority[0].data)
    token                  = data.aws_eks_cluster_auth.this.token
  }
}

module "strom" {
  source = "../../modules/aws"

  cluster_name      = var.cluster_name
  oidc_provider_arn = data.aws_iam_openid_connect_provider.this.arn
  oidc_issuer_url   = data.aws_eks_cluster.this.identity[0].oidc[0].issuer
  bucket_name       = var.bucket_name
  job_namespaces    = var.job_namespaces
  tags              = { "app.kubernetes.io/part-of" = "strom" }
}
