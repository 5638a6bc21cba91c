"""Which listed objects a batch processes, and why it leaves the others.

A prefix holds more than photos: sidecars (``.xmp``, ``.json``), videos,
exports without an extension. The batch must not silently ignore them, nor
silently process what it cannot write. So every listed object is classified:

* an image extension: a candidate (the decoder classifies bad content later,
  as ``corrupt``, ``unsupported``...);
* no image extension: its first bytes are sniffed for an image signature (a
  JPEG exported as ``IMG_0001`` is an image); what is not one is listed in the
  manifest under ``not_images`` with the reason;
* an image whose output names would break Azure's blob-name limits (1,024
  characters, 254 segments: the output prefix and ``/{rendition}.{ext}`` add
  to the source name, with its version) is refused up front as ``invalid_name``.

Pure functions: the listing and the byte reads are the activity's job.
"""

from __future__ import annotations

from collections.abc import Iterable

from imagebatch.naming import MAX_BLOB_NAME_LENGTH, MAX_PATH_SEGMENTS, VERSION_PLACEHOLDER, output_blob_name

KIND_INVALID_NAME = "invalid_name"
SNIFF_BYTES = 16

# Signatures of the formats the app decodes (Pillow's plugins check the same
# bytes): the one table, also used by ``imagebatch.imaging`` to tell a damaged
# image from a file that is no image at all. Each entry is every
# ``(offset, bytes)`` part the head must hold.
IMAGE_SIGNATURES: tuple[tuple[str, tuple[tuple[int, bytes], ...]], ...] = (
    ("jpeg", ((0, b"\xff\xd8\xff"),)),
    ("png", ((0, b"\x89PNG\r\n\x1a\n"),)),
    ("gif", ((0, b"GIF87a"),)),
    ("gif", ((0, b"GIF89a"),)),
    ("webp", ((0, b"RIFF"), (8, b"WEBP"))),
    ("tiff", ((0, b"II*\x00"),)),
    ("tiff", ((0, b"MM\x00*"),)),
    ("bmp", ((0, b"BM"),)),
)


def sniff_image_format(head: bytes) -> str | None:
    """The image format whose signature ``head`` (the object's first bytes) starts with."""
    for fmt, parts in IMAGE_SIGNATURES:
        if all(head[offset : offset + len(part)] == part for offset, part in parts):
            return fmt
    return None


def output_name_error(output_prefix: str, source_name: str, renditions: Iterable[str], extension: str) -> str | None:
    """Why this source's outputs could not be written under Azure's blob-name limits, or None."""
    for rendition in renditions:
        name = output_blob_name(output_prefix, source_name, rendition, extension, VERSION_PLACEHOLDER)
        if len(name) > MAX_BLOB_NAME_LENGTH:
            return f"output '{rendition}' would be {len(name)} characters long, over Azure's {MAX_BLOB_NAME_LENGTH}"
        segments = name.count("/") + 1
        if segments > MAX_PATH_SEGMENTS:
            return f"output '{rendition}' would have {segments} path segments, over Azure's {MAX_PATH_SEGMENTS}"
    return None
