"""The batch report: one self-contained ``index.html`` built from the manifest.

Why a static page next to ``manifest.json``: the manifest is for machines; a
person wants to *see* the batch (did the thumbnails come out right, what
failed and why) without a tool. The page lives in the output container at
``{output prefix}_batches/{id}/runs/{run}/index.html`` and is opened straight from the
blob endpoint, so:

* every link is **relative** to the report's own blob (``../../2024/cat.jpg/
  thumb.webp``): it works on Azurite, on ``*.blob.core.windows.net``, behind a
  CDN or after copying the container elsewhere, and it never embeds an
  account URL or a SAS token;
* nothing is loaded from elsewhere (no external script, font or stylesheet);
  the CSS and a tiny load-counting script are inline;
* names come from users (blob names), so every name and message is
  HTML-escaped and every URL segment percent-encoded;
* it stays one light page for 10,000 images: images are referenced, never
  inlined, thumbnails are ``loading="lazy"``, and the grid and the failure
  table are capped (the manifest keeps everything).

Pure function of its inputs: no storage, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote

from imagebatch.naming import run_folder

REPORT_FILE = "index.html"
REPORT_CONTENT_TYPE = "text/html; charset=utf-8"
MAX_THUMBNAILS = 1000
MAX_FAILURE_ROWS = 1000


def report_blob_name(output_prefix: str, instance_id: str, run: str) -> str:
    """Where the report of one run of a batch lives: beside its manifest."""
    return run_folder(output_prefix, instance_id, run) + REPORT_FILE


def relative_url(from_blob: str, to_blob: str) -> str:
    """URL of ``to_blob`` relative to the blob ``from_blob`` in the same container.

    Works on ``/``-separated segments rather than ``posixpath.relpath``, which
    would collapse empty segments (``a//b`` is a different blob from ``a/b``).
    Each segment is percent-encoded with nothing kept safe, so ``#``, ``?``,
    ``%`` and a ``:`` that would otherwise read as a URL scheme stay part of the
    name; a same-folder result gets a ``./`` so it can never start with ``//``.
    """
    base = from_blob.split("/")[:-1]
    target = to_blob.split("/")
    common = 0
    while common < len(base) and common < len(target) - 1 and base[common] == target[common]:
        common += 1
    ups = len(base) - common
    rest = "/".join(quote(segment, safe="") for segment in target[common:])
    return ("../" * ups if ups else "./") + rest


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - loop always returns


def _ms(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value} ms" if value < 1000 else f"{value / 1000:.1f} s"


def _parse_time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except (TypeError, ValueError):
        return None


def _when(text: Any) -> str:
    parsed = _parse_time(text)
    return parsed.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if parsed else str(text or "n/a")


def _duration(started: Any, finished: Any) -> str:
    start, end = _parse_time(started), _parse_time(finished)
    if not start or not end:
        return "n/a"
    try:
        seconds = (end - start).total_seconds()
    except TypeError:  # one naive, one aware
        return "n/a"
    return _ms(round(seconds * 1000))


def _smallest(outputs: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    return min(outputs, key=lambda o: (int(o.get("width", 0)) * int(o.get("height", 0)), int(o.get("bytes", 0))))


def _rendition_item(output: Mapping[str, Any], report_blob: str) -> str:
    href = escape(relative_url(report_blob, str(output["blob"])))
    size = f"{int(output.get('width', 0))}&times;{int(output.get('height', 0))}"
    return (
        f'<li><a href="{href}">{escape(str(output.get("rendition", "")))}</a>'
        f"<span>{size} · {_human_bytes(int(output.get('bytes', 0)))}</span></li>"
    )


def _tile(image: Mapping[str, Any], report_blob: str, source_prefix: str) -> str:
    outputs = sorted(image["outputs"], key=lambda o: -int(o.get("width", 0)) * int(o.get("height", 0)))
    thumb = _smallest(outputs)
    name = str(image.get("name", ""))
    label = name.removeprefix(source_prefix) or name
    links = "".join(_rendition_item(o, report_blob) for o in outputs)
    badge = '<span class="tag">skipped</span>' if image.get("status") == "skipped" else ""
    return (
        f'<figure class="tile"><a class="frame" href="{escape(relative_url(report_blob, str(outputs[0]["blob"])))}">'
        f'<img class="thumb" loading="lazy" src="{escape(relative_url(report_blob, str(thumb["blob"])))}" '
        f'width="{int(thumb.get("width", 0))}" height="{int(thumb.get("height", 0))}" alt="{escape(name)}"></a>'
        f'<figcaption title="{escape(name)}">{badge}{escape(label)}</figcaption><ul>{links}</ul></figure>'
    )


def _failure_rows(failures: Sequence[Mapping[str, Any]]) -> str:
    return "".join(
        f"<tr><td>{escape(str(f.get('name', '')))}</td><td><code>{escape(str(f.get('kind') or ''))}</code></td>"
        f"<td>{escape(str(f.get('message') or ''))}</td></tr>"
        for f in failures[:MAX_FAILURE_ROWS]
    )


def _rendition_label(rendition: Mapping[str, Any]) -> str:
    """``thumb 320x320 cover``: the request's rendition as a person would say it."""
    size = f"{rendition.get('width')}" + (f"x{rendition['height']}" if rendition.get("height") else "")
    return f"{rendition.get('name')} {size}" + (" cover" if rendition.get("fit") == "cover" else "")


def _stat(label: str, value: str, css: str = "") -> str:
    return f'<div class="stat {css}"><b>{escape(value)}</b><span>{escape(label)}</span></div>'


def image_count_script(image_class: str, cell_class: str) -> str:
    """A script that counts the ``img.{image_class}`` that loaded / failed into
    ``<body data-loaded data-failed data-total>`` and marks a failed image's
    ``.{cell_class}`` as broken: a person (and the browser tests) see at a glance
    whether every link resolves. Recounting on each event keeps it idempotent."""
    return f"""<script>
(function () {{
  var body = document.body, imgs = document.querySelectorAll("img.{image_class}");
  function count() {{
    var ok = 0, bad = 0;
    imgs.forEach(function (i) {{ if (i.complete) {{ if (i.naturalWidth > 0) ok++; else bad++; }} }});
    body.dataset.total = imgs.length; body.dataset.loaded = ok; body.dataset.failed = bad;
  }}
  imgs.forEach(function (i) {{
    i.addEventListener("load", count);
    i.addEventListener("error", function () {{ i.closest(".{cell_class}").classList.add("broken"); count(); }});
  }});
  count();
}})();
</script>"""


_SCRIPT = image_count_script("thumb", "tile")

_CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
color:#1f2328;background:#f6f8fa}
main{max-width:1200px;margin:0 auto;padding:24px 28px 48px}
header{display:flex;align-items:center;gap:12px;flex-wrap:wrap}
h1{font-size:22px;margin:0;font-weight:600;overflow-wrap:anywhere}
h2{font-size:16px;margin:28px 0 10px;font-weight:600}
.badge{padding:2px 10px;border-radius:999px;font-size:12px;font-weight:600;text-transform:uppercase;
letter-spacing:.04em}
.succeeded{background:#dafbe1;color:#116329}.failed-b{background:#ffebe9;color:#a40e26}
.meta{color:#59636e;margin:6px 0 0;overflow-wrap:anywhere}
.meta a{color:#0969da}
.stats{display:grid;grid-template-columns:repeat(auto-fit,minmax(130px,1fr));gap:10px;margin-top:18px}
.stat{background:#fff;border:1px solid #d1d9e0;border-radius:8px;padding:10px 14px}
.stat b{display:block;font-size:22px;font-weight:600}.stat span{color:#59636e;font-size:12px}
.stat.bad b{color:#cf222e}.stat.good b{color:#1a7f37}
.note{color:#59636e;font-size:13px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:14px}
.tile{margin:0;background:#fff;border:1px solid #d1d9e0;border-radius:8px;overflow:hidden;display:flex;
flex-direction:column}
.frame{display:flex;align-items:center;justify-content:center;height:150px;
background:repeating-conic-gradient(#eef1f4 0 25%,#fff 0 50%) 0 0/16px 16px}
.thumb{max-width:100%;max-height:150px;width:auto;height:auto;display:block}
.broken .frame{background:#ffebe9}
figcaption{padding:8px 10px 2px;font-weight:600;font-size:13px;overflow:hidden;text-overflow:ellipsis;
white-space:nowrap}
.tag{font-size:10px;font-weight:600;color:#9a6700;background:#fff8c5;border-radius:4px;padding:1px 5px;margin-right:6px;
vertical-align:1px}
.tile ul{list-style:none;margin:0;padding:2px 10px 10px;font-size:12px}
.tile li{display:flex;justify-content:space-between;gap:6px}
.tile li a{color:#0969da;text-decoration:none}.tile li a:hover{text-decoration:underline}
.tile li span{color:#59636e;font-variant-numeric:tabular-nums}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid #d1d9e0;border-radius:8px;overflow:hidden}
th,td{text-align:left;padding:7px 12px;border-top:1px solid #d1d9e0;vertical-align:top;overflow-wrap:anywhere}
th{background:#f6f8fa;border-top:0;font-size:12px;color:#59636e;text-transform:uppercase;letter-spacing:.04em}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eff2f5;padding:1px 5px;
border-radius:4px}
.alert{background:#ffebe9;border:1px solid #ffcecb;color:#a40e26;border-radius:8px;padding:10px 14px;margin-top:16px}
"""


def build_report(manifest: Mapping[str, Any], *, output_container: str, output_prefix: str) -> str:
    """Render the report for ``manifest`` (the dict ``results.build_manifest``
    returns), to be stored at :func:`report_blob_name` in ``output_container``.

    ``output_prefix`` places the report, and therefore decides every relative
    link; ``output_container`` is only shown.
    """
    batch_id = str(manifest.get("batch_id", ""))
    report_blob = report_blob_name(output_prefix, batch_id, str(manifest.get("run", "")))
    params: Mapping[str, Any] = manifest.get("parameters") or {}
    counts: Mapping[str, Any] = manifest.get("counts") or {}
    timings: Mapping[str, Any] = manifest.get("timings") or {}
    status = str(manifest.get("status", "unknown"))
    spec: Mapping[str, Any] = params.get("spec") or {}
    source_prefix = str(params.get("source_prefix") or "")

    shown = [i for i in manifest.get("images") or [] if i.get("outputs")]
    total_with_outputs = len(shown)
    shown = shown[:MAX_THUMBNAILS]
    failures: Sequence[Mapping[str, Any]] = manifest.get("failures") or []

    source = f"{params.get('source_container', '?')}/{source_prefix}"
    if params.get("source_blobs") is not None:
        source += f" ({len(params['source_blobs'])} listed blobs)"
    elif params.get("source_list"):
        source += f" ({params['source_list'].get('count')} listed blobs)"
    renditions = ", ".join(_rendition_label(r) for r in spec.get("renditions") or [])
    tolerated = float(params.get("tolerated_failure_percent") or 0)
    meta = (
        f"{escape(source)} → {escape(output_container)}/{escape(output_prefix)} · "
        f"{escape(str(spec.get('format', '?')))} q{escape(str(spec.get('quality', '?')))} · "
        f"{escape(renditions)} · concurrency {escape(str(params.get('max_concurrency', '?')))} · "
        f"tolerates {tolerated:g}% failures · "
        f'<a href="manifest.json">manifest.json</a>'
    )
    stats = "".join(
        [
            _stat("images", str(counts.get("total", 0))),
            _stat("processed", str(counts.get("done", 0)), "good"),
            _stat("skipped", str(counts.get("skipped", 0))),
            _stat("failed", str(counts.get("failed", 0)), "bad" if counts.get("failed") else ""),
            *([_stat("not started", str(counts["not_started"]))] if counts.get("not_started") else []),
            _stat("failure rate", f"{float(manifest.get('failure_percent', 0)):.1f}%"),
            _stat("wall time", _duration(timings.get("started"), timings.get("finished"))),
            _stat("median / image", _ms(timings.get("image_ms_median"))),
            _stat("slowest image", _ms(timings.get("image_ms_max"))),
        ]
    )
    listing_error = manifest.get("listing_error")
    alert = f'<div class="alert">Listing failed: {escape(str(listing_error))}</div>' if listing_error else ""
    if status == "cancelled":
        alert += (
            f'<div class="alert">Cancelled: {escape(str(counts.get("not_started", 0)))} image(s) were not started; '
            "re-submit the batch to process them.</div>"
        )
    grid_note = (
        f'<p class="note">Showing the first {len(shown)} of {total_with_outputs} images; '
        f'every image is in <a href="manifest.json">manifest.json</a>.</p>'
        if total_with_outputs > len(shown)
        else ""
    )
    tiles = "".join(_tile(image, report_blob, source_prefix) for image in shown)
    grid = f'<div class="grid">{tiles}</div>' if tiles else '<p class="note">No renditions in this batch.</p>'
    failure_note = (
        f'<p class="note">Showing the first {MAX_FAILURE_ROWS} of {len(failures)} failures.</p>'
        if len(failures) > MAX_FAILURE_ROWS
        else ""
    )
    failure_section = (
        f"<h2>Failures ({len(failures)})</h2>{failure_note}"
        f"<table><thead><tr><th>image</th><th>kind</th><th>reason</th></tr></thead>"
        f"<tbody>{_failure_rows(failures)}</tbody></table>"
        if failures
        else ""
    )
    badge_css = "succeeded" if status == "succeeded" else "failed-b"
    # Failures come before the grid: they are what a reader has to act on,
    # and the grid may run for thousands of tiles.
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Batch {escape(batch_id)} &ndash; {escape(status)}</title><style>{_CSS}</style></head>"
        f'<body data-total="{len(shown)}"><main>'
        f'<header><h1>Batch {escape(batch_id)}</h1><span class="badge {badge_css}">{escape(status)}</span></header>'
        f'<p class="meta">{meta}</p>'
        f'<p class="meta">Started {escape(_when(timings.get("started")))} · '
        f"finished {escape(_when(timings.get('finished')))}</p>"
        f'{alert}<div class="stats">{stats}</div>'
        f"{failure_section}<h2>Renditions ({total_with_outputs})</h2>{grid_note}{grid}"
        f"</main>{_SCRIPT}</body></html>\n"
    )
