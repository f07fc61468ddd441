provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = {
    app         = "market-pipeline"
    environment = var.environment
    managed-by  = "terraform"
  }
}
