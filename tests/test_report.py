"""The HTML report as a pure function: links, escaping, size at scale."""

from __future__ import annotations

import json
import re
import time
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

import pytest

from activities.notify_completion import notify_completion
from imagebatch.messages import ImageResult, NotifyInput, ShardRecord
from imagebatch.naming import output_blob_name
from imagebatch.report import (
    MAX_FAILURE_ROWS,
    MAX_THUMBNAILS,
    build_report,
    relative_url,
    report_blob_name,
)
from imagebatch.results import ImageStatus, Progress, build_manifest, failed_result, image_result, output_entry
from imagebatch.settings import AppSettings
from imagebatch.specs import BatchRequest

RUN = "20261126T100000Z-abc123"
V = "3f2a9c01d4"

RENDITIONS = (("large", 1600, 1067, 250_000), ("medium", 800, 533, 90_000), ("thumb", 320, 213, 20_000))


def processed(name: str, prefix: str, status: ImageStatus = "processed") -> dict:
    outputs = [output_entry(r, output_blob_name(prefix, name, r, "webp", V), w, h, b) for r, w, h, b in RENDITIONS]
    return image_result(name, status, outputs=outputs, duration_ms=120)


def manifest_for(results: list[dict], prefix: str = "web/", batch_id: str = "b-1", **extra) -> dict:
    progress = Progress(total=len(results))
    for result in results:
        progress.record(result)
    request = {
        "source_container": "photos",
        "source_prefix": "2024/",
        "source_blobs": None,
        "output_container": "renditions",
        "output_prefix": prefix,
        "spec": {
            "renditions": [{"name": r, "width": w, "height": None, "fit": "contain"} for r, w, _, _ in RENDITIONS],
            "format": "webp",
            "quality": 80,
        },
        "max_concurrency": 10,
        "tolerated_failure_percent": 5,
        "batch_id": batch_id,
    }
    return build_manifest(
        instance_id=batch_id,
        run=RUN,
        request=request,
        results=results,
        progress=progress,
        status="succeeded",
        started="2026-11-26T10:00:00+00:00",
        finished="2026-11-26T10:01:30.500000+00:00",
        **extra,
    )


class Links(HTMLParser):
    """Collects img src, a href, script src and stylesheet links."""

    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[dict[str, str | None]] = []
        self.hrefs: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.imgs.append(values)
        if tag == "a" and values.get("href"):
            self.hrefs.append(values["href"] or "")
        if tag in ("script", "link", "iframe") and (values.get("src") or values.get("href")):
            self.external.append(tag)


def parse(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


def resolve(report_blob: str, link: str) -> str:
    """The blob a browser fetches for ``link`` in a report opened from the blob endpoint.

    RFC 3986 resolution done by hand: ``urllib.parse.urljoin`` drops empty path
    segments (``a//b``), which browsers keep.
    """
    assert not urlsplit(link).scheme and not urlsplit(link).netloc and "?" not in link and "#" not in link, link
    path = f"/devstoreaccount1/renditions/{report_blob}".split("/")[:-1]
    for segment in link.split("/"):
        if segment == "..":
            path.pop()
        elif segment != ".":
            path.append(segment)
    url = "/".join(path)
    assert url.startswith("/devstoreaccount1/renditions/"), url
    return unquote(url.removeprefix("/devstoreaccount1/renditions/"))


@pytest.mark.parametrize(
    ("prefix", "source"),
    [
        ("", "cat.jpg"),
        ("web/", "2024/cat.jpg"),
        ("a/b/c/", "deep/er/still/cat.jpg"),
        ("web/", "names with spaces/100% #1?.jpg"),
        ("web/", "c:/colon.jpg"),
        ("web//", "x//y.jpg"),
        ("été/", "日本/猫 + chat.png"),
        ("", "_batches/b-1/same-folder.jpg"),
    ],
)
def test_relative_links_resolve_to_the_exact_rendition_blob(prefix: str, source: str) -> None:
    report = report_blob_name(prefix, "b-1", RUN)
    target = output_blob_name(prefix, source, "thumb", "webp", V)
    link = relative_url(report, target)
    assert not re.match(r"^[a-z][a-z0-9+.-]*:|^/", link), f"{link!r} must stay a relative path"
    assert resolve(report, link) == target


def test_links_climb_out_of_the_batch_folder_whatever_the_prefix_depth() -> None:
    up = "../../../../"  # index.html sits in _batches/{id}/runs/{run}/
    assert relative_url(report_blob_name("", "x", RUN), "a.jpg/thumb.webp") == up + "a.jpg/thumb.webp"
    assert relative_url(report_blob_name("web/2024/", "x", RUN), "web/2024/a.jpg/thumb.webp") == up + "a.jpg/thumb.webp"
    assert relative_url(report_blob_name("web/", "x", RUN), "web/a b/c#.jpg/t.webp") == up + "a%20b/c%23.jpg/t.webp"


def test_the_grid_shows_the_smallest_rendition_and_links_every_one() -> None:
    results = [processed("2024/cat.jpg", "web/"), processed("2024/dog.jpg", "web/", status="skipped")]
    html = build_report(manifest_for(results), output_container="renditions", output_prefix="web/")
    links = parse(html)
    report = report_blob_name("web/", "b-1", RUN)

    assert [resolve(report, i["src"] or "") for i in links.imgs] == [
        f"web/2024/cat.jpg/thumb.{V}.webp",
        f"web/2024/dog.jpg/thumb.{V}.webp",
    ]
    assert all(i["loading"] == "lazy" for i in links.imgs)
    targets = {resolve(report, href) for href in links.hrefs if href != "manifest.json"}
    assert targets == {
        output_blob_name("web/", n, r, "webp", V) for n in ("2024/cat.jpg", "2024/dog.jpg") for r, *_ in RENDITIONS
    }
    assert "1600&times;1067 · 244.1 KB" in html and "320&times;213 · 19.5 KB" in html
    assert "manifest.json" in links.hrefs
    assert ">skipped<" in html


def test_totals_timings_and_failures_are_shown() -> None:
    results = [processed("2024/a.jpg", "web/"), failed_result("2024/b.jpg", "corrupt", "bad huffman table")]
    html = build_report(manifest_for(results), output_container="renditions", output_prefix="web/")
    text = re.sub(r"<[^>]+>", " ", html)
    for expected in (
        "Batch b-1",
        "succeeded",
        "50.0%",
        "90.5 s",
        "120 ms",
        "2026-11-26 10:00:00 UTC",
        "corrupt",
        "bad huffman table",
        "2024/b.jpg",
        "Failures (1)",
    ):
        assert expected in text, expected


def test_user_supplied_names_and_messages_are_escaped() -> None:
    evil = '2024/<script>alert("x")</script>.jpg'
    results = [
        processed(evil, "web/"),
        failed_result(
            '2024/"><img src=x onerror=alert(1)>.jpg', "corrupt", "<b>bold</b> & </script><script>alert(2)</script>"
        ),
    ]
    html = build_report(manifest_for(results), output_container="renditions", output_prefix="web/")

    assert "<script>alert" not in html and "<img src=x" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;.jpg" in html
    assert html.count("<script>") == 1, "only the report's own inline script"
    links = parse(html)
    assert resolve(report_blob_name("web/", "b-1", RUN), links.imgs[0]["src"] or "") == output_blob_name(
        "web/", evil, "thumb", "webp", V
    )


def test_the_page_is_self_contained() -> None:
    html = build_report(
        manifest_for([processed("2024/a.jpg", "web/")]), output_container="renditions", output_prefix="web/"
    )
    links = parse(html)
    assert links.external == []
    assert not re.search(r"https?://|@import|@font-face|url\(", html), "no external resources of any kind"


def test_ten_thousand_images_stay_one_light_page() -> None:
    results = [processed(f"2024/img{i:05d}.jpg", "web/") for i in range(10_000)]
    results += [failed_result(f"2024/bad{i:05d}.jpg", "corrupt", "x" * 300) for i in range(2_000)]
    manifest = manifest_for(results)
    start = time.perf_counter()
    html = build_report(manifest, output_container="renditions", output_prefix="web/")
    elapsed = time.perf_counter() - start

    assert elapsed < 2, f"{elapsed:.2f}s"
    assert len(html.encode()) < 2_000_000, len(html)
    assert html.count("<img ") == MAX_THUMBNAILS
    assert html.count("<tr><td>") == MAX_FAILURE_ROWS
    assert f"Showing the first {MAX_THUMBNAILS} of 10000 images" in html
    assert f"Showing the first {MAX_FAILURE_ROWS} of 2000 failures" in html
    assert len(html) < len(json.dumps(manifest)) / 3, "far smaller than the manifest it summarises"


def test_edge_cases_render_without_errors() -> None:
    only_failures = manifest_for([failed_result("2024/a.jpg", "empty", "")], listing_error="container gone <x>")
    html = build_report(only_failures, output_container="renditions", output_prefix="")
    assert "No renditions in this batch." in html and "container gone &lt;x&gt;" in html
    assert build_report({}, output_container="c", output_prefix="")  # a malformed manifest still renders


def test_notify_completion_uploads_the_report_beside_the_manifest(blob_service, container_factory) -> None:
    output = container_factory(create=False)
    results = [processed("2024/a.jpg", "web/x/"), failed_result("2024/<b>.jpg", "corrupt", "bad")]
    progress = Progress(total=2, done=1, failed=1)
    segment = tuple(ImageResult.from_dict(result) for result in results)
    notify = NotifyInput(
        instance_id="batch-7",
        run=RUN,
        request=BatchRequest(source_container="photos", output_container=output, output_prefix="web/x/"),
        # One shard whose results were carried inline (no results blob to read).
        shard_outcomes=(ShardRecord(parts=1, segment_size=2, inline={"0": segment}),),
        progress=progress.to_dict(),
        status="failed",
        started="2026-11-26T10:00:00+00:00",
        finished="2026-11-26T10:00:05+00:00",
    )
    summary = notify_completion(notify, blob_service, AppSettings())

    assert summary.report == f"{output}/web/x/_batches/batch-7/runs/{RUN}/index.html"
    assert summary.manifest == f"{output}/web/x/_batches/batch-7/runs/{RUN}/manifest.json"
    blob = blob_service.get_blob_client(output, f"web/x/_batches/batch-7/runs/{RUN}/index.html")
    assert blob.get_blob_properties().content_settings.content_type == "text/html; charset=utf-8"
    html = blob.download_blob().readall().decode("utf-8")
    assert "&lt;b&gt;.jpg" in html and "Batch batch-7" in html
    assert parse(html).imgs[0]["src"] == f"../../../../2024/a.jpg/thumb.{V}.webp"
