"""The proof sheet: one ``proof.html`` a person looks through before approving a batch.

It is built from the sample's per-image results (the same records the manifest
keeps) and stored beside the run's manifest, at
``{output prefix}_batches/{id}/runs/{run}/proof.html``. Like the report
(``imagebatch.report``), every link is **relative** to where the page is stored:

* renditions live in the output container: ``../../../../2024/cat.jpg/thumb.….webp``;
* sources may live in another container, so their links climb one level more, out of
  the output container, and name the source container. That resolves the same on
  Azure (``https://acct.blob.core.windows.net/{container}/…``) and on Azurite's
  path-style URLs (``http://host:port/devstoreaccount1/{container}/…``); the browser
  needs read access to both containers (public containers, or a signed session).

Each sample image is one row: its source (size on disk) beside every rendition (pixels,
bytes, and how much smaller than the source it is), or the reason it failed. An inline
script counts loaded images into ``<body data-total data-loaded data-failed>`` (a person
sees a broken image at once; the browser test reads the numbers). Names are escaped and
URL segments percent-encoded. Pure function of its inputs: no storage, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from imagebatch.naming import proof_blob_name
from imagebatch.report import _CSS, _human_bytes, _rendition_label, _when, image_count_script, relative_url

PROOF_CONTENT_TYPE = "text/html; charset=utf-8"


def cross_container_url(from_blob: str, container: str, blob: str) -> str:
    """URL of ``container/blob`` relative to the blob ``from_blob`` of *another* container:
    up out of ``from_blob``'s folders and its container, then down into ``container``."""
    ups = len(from_blob.split("/"))  # its folders, plus one for its container
    return "../" * ups + "/".join(quote(part, safe="") for part in [container, *blob.split("/")])


def _saved(source_bytes: int | None, output_bytes: int) -> str:
    if not source_bytes:
        return ""
    share = 100.0 * (source_bytes - output_bytes) / source_bytes
    return f" · {share:.0f}% smaller" if share >= 0 else f" · {-share:.0f}% larger"


_PROOF_CSS = """
.row{display:grid;grid-template-columns:220px 1fr;gap:14px;background:#fff;border:1px solid #d1d9e0;
border-radius:8px;padding:12px;margin-bottom:12px}
.row h3{font-size:13px;margin:0 0 6px;overflow-wrap:anywhere}
.cells{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.cell{margin:0;font-size:12px;color:#59636e;max-width:210px}
.cell img{display:block;width:auto;height:auto;max-width:210px;max-height:160px;background:
repeating-conic-gradient(#eef1f4 0 25%,#fff 0 50%) 0 0/16px 16px;margin-bottom:4px}
.src img{max-width:180px;max-height:160px}
.cell b{color:#1f2328}
.row.bad{border-color:#ffcecb;background:#fff8f7}
.bad .why{color:#a40e26}
.decide{background:#fff8c5;border:1px solid #eed888;border-radius:8px;padding:10px 14px;margin-top:16px}
.decide code{background:#fff}
"""

_SCRIPT = image_count_script("proof", "cell")


def _source_cell(image: Mapping[str, Any], proof_blob: str, source_container: str, size: int | None) -> str:
    name = str(image.get("name", ""))
    href = escape(cross_container_url(proof_blob, source_container, name))
    shown = _human_bytes(size) if size else "size unknown"
    return (
        f'<figure class="cell src"><a href="{href}"><img class="proof" loading="lazy" src="{href}" '
        f'alt="source {escape(name)}"></a><b>source</b> · {escape(shown)}</figure>'
    )


def _rendition_cell(output: Mapping[str, Any], proof_blob: str, source_size: int | None) -> str:
    href = escape(relative_url(proof_blob, str(output["blob"])))
    size = int(output.get("bytes", 0))
    return (
        f'<figure class="cell"><a href="{href}"><img class="proof" loading="lazy" src="{href}" '
        f'width="{int(output.get("width", 0))}" height="{int(output.get("height", 0))}" '
        f'alt="{escape(str(output.get("rendition", "")))}"></a>'
        f"<b>{escape(str(output.get('rendition', '')))}</b> · {int(output.get('width', 0))}&times;"
        f"{int(output.get('height', 0))} · {escape(_human_bytes(size))}{escape(_saved(source_size, size))}"
        "</figure>"
    )


def _row(image: Mapping[str, Any], proof_blob: str, source_container: str, sizes: Mapping[str, int]) -> str:
    name = str(image.get("name", ""))
    size = sizes.get(name)
    status = str(image.get("status", ""))
    cells = _source_cell(image, proof_blob, source_container, size)
    outputs = sorted(image.get("outputs") or [], key=lambda o: -int(o.get("width", 0)) * int(o.get("height", 0)))
    if outputs:
        cells += "".join(_rendition_cell(o, proof_blob, size) for o in outputs)
        total = sum(int(o.get("bytes", 0)) for o in outputs)
        detail = f"{status} · renditions {_human_bytes(total)} together"
        if size:
            detail += f", source {_human_bytes(size)}"
        css, why = "row", ""
    else:
        detail = status
        css = "row bad"
        why = (
            f'<p class="why"><code>{escape(str(image.get("kind") or status))}</code> '
            f"{escape(str(image.get('message') or ''))}</p>"
        )
    return (
        f'<section class="{css}"><div><h3>{escape(name)}</h3><p class="note">{escape(detail)}</p>{why}</div>'
        f'<div class="cells">{cells}</div></section>'
    )


def build_proof(
    *,
    batch_id: str,
    run: str,
    request: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    source_sizes: Mapping[str, int],
    total: int,
    timeout_at: str | None,
    on_timeout: str,
) -> str:
    """The proof sheet for the sample ``results`` of a run (stored at ``proof_blob_name``)."""
    output_prefix = str(request.get("output_prefix") or "")
    proof_blob = proof_blob_name(output_prefix, batch_id, run)
    spec: Mapping[str, Any] = request.get("spec") or {}
    renditions = ", ".join(_rendition_label(r) for r in spec.get("renditions") or [])
    source_container = str(request.get("source_container", ""))
    failed = sum(1 for r in results if not r.get("outputs"))
    meta = (
        f"{escape(source_container)}/{escape(str(request.get('source_prefix') or ''))} → "
        f"{escape(str(request.get('output_container', '')))}/{escape(output_prefix)} · "
        f"{escape(str(spec.get('format', '?')))} q{escape(str(spec.get('quality', '?')))} · {escape(renditions)}"
    )
    timeout = (
        f"If nobody decides by {escape(_when(timeout_at))}, the batch is "
        f"{'approved' if on_timeout == 'approve' else 'rejected'} automatically."
        if timeout_at
        else ""
    )
    decide = (
        f'<div class="decide"><b>Approve</b> to render the other {max(0, total - len(results))} image(s) '
        f"(the sample is not rendered again), or <b>reject</b> to stop here. {timeout}<br>"
        f"<code>imagebatch approve {escape(batch_id)}</code> · "
        f'<code>imagebatch reject {escape(batch_id)} --reason "…"</code> · '
        f"<code>POST /api/batches/{escape(batch_id)}/approve</code></div>"
    )
    rows = "".join(_row(r, proof_blob, source_container, source_sizes) for r in results)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Proof of batch {escape(batch_id)}</title><style>{_CSS}{_PROOF_CSS}</style></head>"
        f"<body><main><header><h1>Proof of batch {escape(batch_id)}</h1>"
        '<span class="badge failed-b">awaiting approval</span></header>'
        f'<p class="meta">{meta}</p>'
        f'<p class="meta">Sample of {len(results)} of {total} image(s) · {failed} failed · run {escape(run)}</p>'
        f"{decide}<h2>Sample</h2>{rows}</main>{_SCRIPT}</body></html>\n"
    )
