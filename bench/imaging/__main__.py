"""``python -m bench.imaging``: see :mod:`bench.imaging`."""

from bench.imaging.cli import main

raise SystemExit(main())
