"""Tools for developing the app that never ship with it: generated sample images for tests,
benchmarks and the demo (:mod:`devtools.sample_images`).

Kept out of the deployed packages (``imagebatch``, ``activities``, ``orchestrators``,
``storage``) and out of the ``func publish`` package by ``.funcignore``.
"""
