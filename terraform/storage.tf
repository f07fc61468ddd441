# Checkpoints of the stream job on GCS: the driver and every executor pod read and
# write them, wherever they run. Reached through Workload Identity: the Kubernetes
# service accounts spark-driver and spark-executor (k8s/base/stream-processor) act as
# the Google service account below, which may use the objects of this bucket only.
resource "google_storage_bucket" "checkpoints" {
  name     = "${var.project_id}-${local.name}-checkpoints"
  location = var.region
  # Same region as the cluster: checkpoint writes are on every micro-batch's path.
  storage_class = "STANDARD"

  # IAM only, no object ACLs; never public.
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # An overwritten or deleted checkpoint file can be restored for a week.
  versioning {
    enabled = true
  }

  # No age rule on live objects: a query's checkpoint keeps files written at its
  # first start (metadata, sources/) for its whole life, and deleting them by age
  # would break a long-running query. Spark deletes old batch files itself; only the
  # versions it replaced or deleted expire here.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  force_destroy = false

  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "spark" {
  account_id   = "${local.name}-spark"
  display_name = "Spark driver and executors of ${local.name} (checkpoints)"

  depends_on = [google_project_service.enabled]
}

# Objects of this bucket only: create, read, overwrite, delete (Spark's renames),
# no bucket or IAM changes.
resource "google_storage_bucket_iam_member" "spark_checkpoints" {
  bucket = google_storage_bucket.checkpoints.name
  role   = "roles/storage.objectUser"
  member = google_service_account.spark.member
}

# Workload Identity: exactly these two Kubernetes service accounts of namespace
# market may act as the Google service account.
resource "google_service_account_iam_member" "spark_workload_identity" {
  for_each = toset(["spark-driver", "spark-executor"])

  service_account_id = google_service_account.spark.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[market/${each.value}]"

  depends_on = [google_container_cluster.market]
}
