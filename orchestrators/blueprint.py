"""The one Blueprint every orchestrator registers on (Blueprints cannot be nested)."""

import azure.durable_functions as df

bp = df.Blueprint()
