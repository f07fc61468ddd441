variable "project_id" {
  type        = string
  description = "GCP project that hosts the pipeline."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid GCP project id (6-30 lowercase letters, digits, hyphens)."
  }
}

variable "region" {
  type        = string
  description = "Region of the network, the regional GKE cluster, the registry and the secret replicas."
  default     = "europe-west1"
}

variable "environment" {
  type        = string
  description = "Environment name; prefixes resource names and matches the kustomize overlay (dev or prod)."

  validation {
    condition     = contains(["dev", "prod"], var.environment)
    error_message = "environment must be dev or prod."
  }
}

variable "subnet_cidr" {
  type        = string
  description = "Primary range of the cluster subnet (nodes)."
  default     = "10.10.0.0/20"

  validation {
    condition     = can(cidrhost(var.subnet_cidr, 0))
    error_message = "subnet_cidr must be a CIDR block."
  }
}

variable "pods_cidr" {
  type        = string
  description = "Secondary range for pod IPs (VPC-native cluster)."
  default     = "10.20.0.0/16"

  validation {
    condition     = can(cidrhost(var.pods_cidr, 0))
    error_message = "pods_cidr must be a CIDR block."
  }
}

variable "services_cidr" {
  type        = string
  description = "Secondary range for Service cluster IPs."
  default     = "10.30.0.0/20"

  validation {
    condition     = can(cidrhost(var.services_cidr, 0))
    error_message = "services_cidr must be a CIDR block."
  }
}

variable "master_cidr" {
  type        = string
  description = "/28 range for the private control plane endpoint peering."
  default     = "172.16.0.0/28"

  validation {
    condition     = can(cidrhost(var.master_cidr, 0)) && endswith(var.master_cidr, "/28")
    error_message = "master_cidr must be a /28 CIDR block."
  }
}

variable "master_authorized_networks" {
  type = list(object({
    cidr_block   = string
    display_name = string
  }))
  description = "Networks allowed to reach the control plane endpoint: the machines that run kubectl and the Ansible playbook (operators, CI runners), as /32 or small ranges. Required and never empty: the nodes are private and there is no bastion, so these are the only way to the API."

  validation {
    condition     = length(var.master_authorized_networks) > 0
    error_message = "List at least one network that may reach the Kubernetes API (the operators' or CI's public address)."
  }

  validation {
    condition     = alltrue([for n in var.master_authorized_networks : can(cidrhost(n.cidr_block, 0)) && n.cidr_block != "0.0.0.0/0"])
    error_message = "Each cidr_block must be a CIDR block other than 0.0.0.0/0."
  }
}

variable "release_channel" {
  type        = string
  description = "GKE release channel: automatic control plane and node upgrades."
  default     = "REGULAR"

  validation {
    condition     = contains(["RAPID", "REGULAR", "STABLE"], var.release_channel)
    error_message = "release_channel must be RAPID, REGULAR or STABLE."
  }
}

variable "node_machine_types" {
  type        = map(string)
  description = "Machine type of the node pool per environment. A node holds one Kafka broker and one Cassandra node, and may hold the Spark driver, every executor and the stateless pods too: prod needs e2-standard-8 (8 vCPU, 32 GB) for that and still leaves GKE's system pods at least one vCPU; dev, with its smaller requests, fits e2-standard-4."
  default = {
    dev  = "e2-standard-4"
    prod = "e2-standard-8"
  }

  validation {
    condition     = alltrue([for env in ["dev", "prod"] : contains(keys(var.node_machine_types), env)])
    error_message = "node_machine_types must name a machine type for dev and for prod."
  }
}

variable "nodes_per_zone" {
  type        = number
  description = "Nodes per zone of the regional node pool (three zones). 1 runs the prod overlay; the required anti-affinity needs 3 nodes in total."
  default     = 1

  validation {
    condition     = var.nodes_per_zone >= 1 && var.nodes_per_zone <= 3
    error_message = "nodes_per_zone must be between 1 and 3."
  }
}

variable "node_disk_size_gb" {
  type        = number
  description = "Boot disk size of each node, in GB (images and emptyDir volumes; data lives on persistent disks)."
  default     = 100

  validation {
    condition     = var.node_disk_size_gb >= 50
    error_message = "node_disk_size_gb must be at least 50."
  }
}

variable "deployers" {
  type        = list(string)
  description = "IAM members (user:, group:, serviceAccount:) allowed to impersonate the deployer service account that runs the Ansible playbook."
  default     = []

  validation {
    condition     = alltrue([for m in var.deployers : can(regex("^(user|group|serviceAccount):", m))])
    error_message = "Each deployer must start with user:, group: or serviceAccount:."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse `terraform destroy` of the cluster. Keep true outside throwaway environments."
  default     = true
}
