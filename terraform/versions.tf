# Versions are pinned so every operator and CI plan with the same tools. Commit the
# .terraform.lock.hcl that `terraform init` writes: it pins the provider checksums.
terraform {
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.49"
    }
  }
}
