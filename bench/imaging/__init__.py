"""Benchmark 1: our pipeline (libvips and Pillow backends) against naive Pillow and libvips.

One job per module: :mod:`.variants` (what is compared), :mod:`.harness` (inputs,
timing, quality, peak memory, profiling), :mod:`.report` (tables, ratio lines, chart)
and :mod:`.cli` (the command line). Exploratory recipe experiments live in
:mod:`bench.experiments.pillow_recipes`.

    python -m bench.imaging [--quick] [--out bench/results/imaging.json]
                            [--images 6] [--repeats 3] [--chart docs/bench/imaging.png]
                            [--profile]    # cProfile of the Pillow recipe

Why it is built this way:

* **Same machine, same run.** The reference box has 2 shared cores, so
  absolute times drift by 10-20 % between runs. Every variant is timed in the
  same run, interleaved repeat by repeat (the variant order rotates each
  repeat), and the verdicts are *ratios* against the naive baseline and
  against libvips measured alongside it.
* **Variants** (all produce the same renditions, same format, quality 82):

  - ``naive``: what a first implementation does: ``open`` -> ``convert("RGB")``
    -> a LANCZOS ``resize`` of the *full* image per rendition -> ``save`` with
    Pillow's default encoder settings. This is the baseline of every ratio.
  - ``ours``: :func:`imagebatch.imaging.render_image` with its default
    backend (``auto``), i.e. what production runs: libvips resamples every
    rendition (and decodes plain 8-bit PNGs) when pyvips is installed, Pillow
    still identifies, draft-decodes JPEGs and encodes. Without pyvips it is
    the Pillow recipe, the same as ``ours-pillow`` (the header says which).
  - ``ours-pillow``: ``render_image(..., backend="pillow")``, the pure-Pillow
    recipe (JPEG draft, ``reduce``, LANCZOS cascade largest first): the
    fallback when libvips is missing. Always measured, so the ratios show both
    what libvips saves and where the fallback stands.
  - ``pyvips``: ``thumbnail_buffer`` once per rendition (libvips's own
    shrink-on-load for each), libvips limited to 1 thread so a process uses one
    core, like Pillow.
  - ``pyvips-cascade``: ``thumbnail_buffer`` for the largest rendition, then
    ``thumbnail_image`` of that in-memory result for the smaller ones (our own
    cascading, in libvips). 1 thread.
  - ``pyvips-2thr``: as ``pyvips`` with libvips's thread pool at its default
    size (= cores): what a pyvips user gets out of the box; with 2 processes
    it oversubscribes the cores.
  - ``vipsthumbnail``: the Debian ``libvips-tools`` CLI, one invocation per
    rendition reading the file from disk (process start-up included), with
    ``VIPS_CONCURRENCY=1``. Skipped, with the reason, when it is not installed.

  libvips encoders get *our* settings (no Huffman optimisation, 4:2:0 below
  q90, WebP effort 2, PNG compression 4) and libvips's operation cache is
  disabled, so repeats are real work and "faster" means the pipeline, not
  encoder tuning or caching.
* **Quality at equal settings.** For the first image of every cell each
  variant's renditions are decoded and compared (luma SSIM,
  :func:`bench.common.ssim_luma`) with a LANCZOS resize of the *full
  resolution* decode to the same size. "enc-only" is that reference pushed
  through Pillow's encoder at the same settings: the floor any lossy variant
  can reach.
* **Throughput** with 2 processes uses a ``ProcessPoolExecutor`` (spawned, so
  libvips threads in the parent are never forked) over N images; images/s is
  N divided by the wall time of a repeat, per-image times are measured inside
  the workers.
* **Peak memory** is measured for an 8000x6000 JPEG in a fresh interpreter per
  variant (``VmHWM``; the CLI's own ``ru_maxrss``), because a long-lived
  benchmark process never gives memory back.
"""

from __future__ import annotations

from bench.imaging.cli import main, run

__all__ = ["main", "run"]
