# Least privilege, two identities:
# - nodes: what a GKE node needs (logs, metrics, pulling images from this registry),
#   instead of the project-wide Editor role of the default compute service account.
# - deployer: what the Ansible playbook needs (apply manifests, read the pipeline's
#   secrets). People and CI impersonate it; nobody holds its key.
# With Workload Identity and the GKE metadata server, pods map to no Google identity
# unless bound to one: only the Spark pods are (storage.tf, the checkpoint bucket).
resource "google_service_account" "nodes" {
  account_id   = "${local.name}-nodes"
  display_name = "GKE nodes of ${local.name}"

  depends_on = [google_project_service.enabled]
}

resource "google_project_iam_member" "nodes" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/autoscaling.metricsWriter",
  ])

  project = var.project_id
  role    = each.value
  member  = google_service_account.nodes.member
}

# Pull access to this one repository only.
resource "google_artifact_registry_repository_iam_member" "nodes_pull" {
  repository = google_artifact_registry_repository.images.name
  location   = google_artifact_registry_repository.images.location
  role       = "roles/artifactregistry.reader"
  member     = google_service_account.nodes.member
}

resource "google_service_account" "deployer" {
  account_id   = "${local.name}-deployer"
  display_name = "Deploys the market pipeline (ansible/site.yml)"

  depends_on = [google_project_service.enabled]
}

# Kubernetes API access to this project's clusters; in-cluster RBAC can narrow it.
resource "google_project_iam_member" "deployer_gke" {
  project = var.project_id
  role    = "roles/container.developer"
  member  = google_service_account.deployer.member
}

resource "google_service_account_iam_member" "deployer_impersonation" {
  for_each = toset(var.deployers)

  service_account_id = google_service_account.deployer.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = each.value
}
