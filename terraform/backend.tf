# State lives in a GCS bucket (versioned, created once by hand or by a bootstrap
# project). The bucket is given at init time so this file holds no environment:
#   terraform init -backend-config="bucket=<state-bucket>" -backend-config="prefix=market/dev"
# The state holds no secret values: secrets.tf creates only the secret containers.
terraform {
  backend "gcs" {}
}
