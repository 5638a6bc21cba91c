"""``imagebatch``: a command-line client for the image-batch function app.

It talks to the app only through its public HTTP API (``POST /api/batches``,
``GET /api/batches/{id}``) and the Durable management webhook, and to Blob
Storage with a connection string, so it works the same against the local dev
host + Azurite and against a deployed app. Not deployed with the app.
"""
