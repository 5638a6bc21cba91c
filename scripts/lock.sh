#!/usr/bin/env bash
# Regenerate requirements.txt, the pinned lock of what `func azure functionapp publish`
# installs, from the ranges in requirements.in (pip-tools' pip-compile, from requirements-dev.txt).
#
#   bash scripts/lock.sh            keep the current pins where the ranges allow (add/remove only)
#   bash scripts/lock.sh --upgrade  move every pin to the newest release the ranges allow
#   bash scripts/lock.sh --upgrade-package pillow   move one package (and what it needs)
#
# The lock is for what Azure Functions runs: CPython 3.11 on Linux x86_64. pip-compile resolves
# for the interpreter and platform it runs on, so this refuses anywhere else (set
# LOCK_ANY_PLATFORM=1 to override at your own risk; e.g. run it in a python:3.11 container).
# No hashes: requirements-dev.txt includes this file, and one hash would put pip's every install
# from it into hash-checking mode. Then: make install, and tests/test_requirements_lock.py.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-.venv/bin/python}"
platform="$("$python" -c 'import platform, sys; print(sys.implementation.name, "%d.%d" % sys.version_info[:2], platform.system(), platform.machine())')"
if [ "$platform" != "cpython 3.11 Linux x86_64" ] && [ -z "${LOCK_ANY_PLATFORM:-}" ]; then
  echo "lock: this interpreter is '$platform'; the lock is for 'cpython 3.11 Linux x86_64'" >&2
  echo "lock: (what Azure Functions Python 3.11 runs). Run it there, or set LOCK_ANY_PLATFORM=1." >&2
  exit 2
fi

CUSTOM_COMPILE_COMMAND="bash scripts/lock.sh  (CPython 3.11, Linux x86_64)" \
  "$python" -m piptools compile --quiet --strip-extras --allow-unsafe --no-emit-index-url \
  --no-emit-find-links --no-emit-trusted-host --annotation-style=line \
  --output-file requirements.txt requirements.in "$@"
