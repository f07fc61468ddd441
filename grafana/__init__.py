"""Grafana for the market pipeline: provisioning files (dashboards/, provisioning/,
grafana.ini), the renderer that draws the dashboards from Cassandra without Grafana
(`python -m grafana.render`) and the local Grafana launcher (`python -m grafana.local`)."""
