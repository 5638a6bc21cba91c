"""The one Blueprint every HTTP route registers on (Blueprints cannot be nested)."""

import azure.durable_functions as df
import azure.functions as func

bp = df.Blueprint(http_auth_level=func.AuthLevel.FUNCTION)
