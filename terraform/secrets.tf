# Secret Manager secrets of the pipeline: the containers only. Values are added
# outside Terraform, so no secret ever lands in the state or in a plan:
#   printf '%s' "$FINNHUB_TOKEN" | gcloud secrets versions add market-dev-finnhub-token --data-file=-
#   openssl rand -base64 24 | tr -d '\n' | gcloud secrets versions add market-dev-cassandra-app-password --data-file=-
# The Ansible playbook reads the latest version of each and creates the Kubernetes
# Secrets from them.
locals {
  secrets = toset([
    "finnhub-token",
    "cassandra-admin-password",
    "cassandra-app-password",
    "cassandra-grafana-password",
    "grafana-admin-password",
  ])
}

resource "google_secret_manager_secret" "pipeline" {
  for_each = local.secrets

  secret_id = "${local.name}-${each.value}"

  # Kept in the cluster's region.
  replication {
    user_managed {
      replicas {
        location = var.region
      }
    }
  }

  depends_on = [google_project_service.enabled]
}

# Per secret, not project-wide: the deployer reads these five and nothing else.
resource "google_secret_manager_secret_iam_member" "deployer" {
  for_each = google_secret_manager_secret.pipeline

  secret_id = each.value.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.deployer.member
}
