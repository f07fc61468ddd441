# Regional private GKE cluster: nodes without public IPs, control plane reachable
# only from master_authorized_networks, Dataplane V2 (enforces the NetworkPolicies
# of k8s/), Workload Identity with the GKE metadata server (pods never see the node
# service account's credentials).
resource "google_container_cluster" "market" {
  name     = local.name
  location = var.region

  network    = google_compute_network.vpc.id
  subnetwork = google_compute_subnetwork.nodes.id

  # Node pools are managed below; the default one is removed right away.
  remove_default_node_pool = true
  initial_node_count       = 1

  deletion_protection = var.deletion_protection
  networking_mode     = "VPC_NATIVE"
  datapath_provider   = "ADVANCED_DATAPATH"

  ip_allocation_policy {
    cluster_secondary_range_name  = "pods"
    services_secondary_range_name = "services"
  }

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = false
    master_ipv4_cidr_block  = var.master_cidr

    master_global_access_config {
      enabled = false
    }
  }

  # The operators' and CI's networks (required variable): with none, nobody could
  # reach the API, the Ansible run included.
  master_authorized_networks_config {
    gcp_public_cidrs_access_enabled = false
    dynamic "cidr_blocks" {
      for_each = var.master_authorized_networks
      content {
        cidr_block   = cidr_blocks.value.cidr_block
        display_name = cidr_blocks.value.display_name
      }
    }
  }

  release_channel {
    channel = var.release_channel
  }

  workload_identity_config {
    workload_pool = "${var.project_id}.svc.id.goog"
  }

  enable_shielded_nodes = true
  # Pod-to-pod traffic on one node shows in the VPC flow logs too.
  enable_intranode_visibility = true

  # Only Google identities (IAM) reach the API: no static client certificate.
  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  resource_labels = {
    app         = "market-pipeline"
    environment = var.environment
  }

  addons_config {
    gce_persistent_disk_csi_driver_config {
      enabled = true
    }
    http_load_balancing {
      disabled = false
    }
  }

  logging_config {
    enable_components = ["SYSTEM_COMPONENTS", "WORKLOADS"]
  }

  monitoring_config {
    enable_components = ["SYSTEM_COMPONENTS"]
    managed_prometheus {
      enabled = true
    }
  }

  # Upgrades of the control plane and nodes only on weekend nights: 00:00-08:00 UTC
  # on Saturday and on Sunday. GKE refuses a policy that leaves less than 48 hours
  # of maintenance in any 32 days; any 32 days hold at least four Saturdays and four
  # Sundays, so at least 64 hours.
  maintenance_policy {
    recurring_window {
      start_time = "2026-01-03T00:00:00Z"
      end_time   = "2026-01-03T08:00:00Z"
      recurrence = "FREQ=WEEKLY;BYDAY=SA,SU"
    }
  }

  depends_on = [google_project_service.enabled]
}

# One node per zone by default: three nodes for the three Kafka brokers and three
# Cassandra nodes of the prod overlay (required anti-affinity per host). The machine
# type follows the environment (variable node_machine_types).
resource "google_container_node_pool" "default" {
  name       = "default"
  cluster    = google_container_cluster.market.id
  location   = var.region
  node_count = var.nodes_per_zone

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  # Surge one node at a time: the PodDisruptionBudgets then move one broker and one
  # Cassandra node at a time.
  upgrade_settings {
    strategy        = "SURGE"
    max_surge       = 1
    max_unavailable = 0
  }

  node_config {
    machine_type    = var.node_machine_types[var.environment]
    disk_type       = "pd-balanced"
    disk_size_gb    = var.node_disk_size_gb
    image_type      = "COS_CONTAINERD"
    service_account = google_service_account.nodes.email
    # Access is governed by the service account's IAM roles, not by scopes.
    oauth_scopes = ["https://www.googleapis.com/auth/cloud-platform"]

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    metadata = {
      disable-legacy-endpoints = "true"
    }

    labels = {
      pool = "default"
    }
  }
}
