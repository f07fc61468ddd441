# Docker repository of the application image; the kustomize overlays point the
# `market-pipeline` image at <region>-docker.pkg.dev/<project>/market/market-pipeline.
resource "google_artifact_registry_repository" "images" {
  repository_id = "market"
  location      = var.region
  format        = "DOCKER"
  description   = "Market pipeline application images"

  docker_config {
    # A pushed tag never moves: deployments pin tags, releases pin digests.
    immutable_tags = true
  }

  depends_on = [google_project_service.enabled]
}
