"""Azure Blob Storage adapters used by the activities and the HTTP layer.

This is the only place that knows about ``azure-storage-blob``, ``azure-identity``
and the SDK's exceptions (``tests/test_storage_adapter.py`` keeps it so): the
activities, the orchestrators, the domain code in ``imagebatch`` and
``function_app.py`` with ``http_api`` call the modules below with plain values, hold a client
only as ``clients.BlobService`` / ``clients.AsyncBlobService``, and catch
storage errors by the names in ``errors``.

* ``clients``: the one client factory (sync and asyncio), cached per worker.
* ``blobs``: source images (list, read) and their renditions (write, check, remove).
* ``plans``: the source list, the shard plans and the plan's ``extra.json``.
* ``results``: each shard segment's per-image results.
* ``reports``: the manifest, the report, the proof sheet and ``latest.json``.
* ``runs``: the cancel marker, a batch's finished runs, removing a run's scratch blobs.
* ``controls`` / ``review``: the live controls and the review decision (conditional writes).
* ``errors``: transient or permanent, and one-line descriptions.
* ``documents``: the whole-blob puts and reads the modules above are built from.
"""
