"""Platform connectors (Slack, Discord) and the server that runs them."""
