output "cluster_name" {
  description = "Name of the GKE cluster."
  value       = google_container_cluster.market.name
}

output "cluster_location" {
  description = "Region of the GKE cluster."
  value       = google_container_cluster.market.location
}

output "get_credentials" {
  description = "Writes a kubeconfig entry for the cluster (the Ansible playbook uses it)."
  value       = "gcloud container clusters get-credentials ${google_container_cluster.market.name} --region ${google_container_cluster.market.location} --project ${var.project_id}"
}

output "image_repository" {
  description = "Where to push the application image (kustomize images: newName)."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}/market-pipeline"
}

output "checkpoint_bucket" {
  description = "GCS bucket of the stream job's checkpoints (STREAM_CHECKPOINT_ROOT gs://<bucket>/stream)."
  value       = google_storage_bucket.checkpoints.name
}

output "spark_service_account" {
  description = "Google service account of the Spark pods (iam.gke.io/gcp-service-account of spark-driver and spark-executor)."
  value       = google_service_account.spark.email
}

output "deployer_service_account" {
  description = "Service account to impersonate when running ansible/site.yml."
  value       = google_service_account.deployer.email
}

output "secret_ids" {
  description = "Secret Manager secret ids, keyed by purpose; add versions with gcloud."
  value       = { for key, secret in google_secret_manager_secret.pipeline : key => secret.secret_id }
}
