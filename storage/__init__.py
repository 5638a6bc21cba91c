"""Azure Blob Storage adapters used by the activities.

This is the only place that knows about ``azure-storage-blob`` and
``azure-identity``; the domain code in ``imagebatch`` never sees them.
"""
