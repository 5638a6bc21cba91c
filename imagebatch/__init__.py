"""Azure-free domain code for the image batch: render specs, request validation,
the Pillow pipeline, naming rules and batch results.

Nothing in this package imports Azure SDKs, so every rule can be unit-tested
without storage, the Functions host or Durable Functions.
"""
