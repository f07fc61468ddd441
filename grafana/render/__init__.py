"""Render the provisioned dashboards to PNG from Cassandra, without Grafana.

The queries are substituted the way Grafana's frontend and the Cassandra datasource
plugin (hadesarchitect-cassandra-datasource) do, run against Cassandra, shaped into
the plugin's data frames and drawn with matplotlib at each panel's grid position.
Everything the renderer does not support fails with a message naming the panel.
"""
