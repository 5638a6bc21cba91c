#!/usr/bin/env bash
# Audit the function app's runtime dependencies for known vulnerabilities with pip-audit:
# exactly the pinned set in requirements.txt, the lock `func publish` installs (transitive
# dependencies included; generated from requirements.in by scripts/lock.sh). `--no-deps
# --disable-pip` audits those pins as they are, resolving nothing, and refuses an unpinned line.
# (pip-audit then suggests hashes; the lock has none, see scripts/lock.sh.)
#
# Exit status:
#   0  every dependency was audited and none has a known vulnerability
#   1  at least one known vulnerability (pip-audit's report says which / fix versions)
#   2  the audit could NOT be performed (vulnerability service unreachable, a
#      dependency unknown to it, pip-audit missing): never a silent pass.
#
# Why the extra care: without --strict, pip-audit prints "No known
# vulnerabilities found" and exits 0 even when it skipped *every* dependency
# because the vulnerability service could not be asked. Behind a proxy that
# answers 404 for PyPI's JSON API (as on our build machines) that is exactly
# what happens.
#
# Settings (environment):
#   AUDIT_SERVICE  pypi (default) or osv: where the vulnerability data comes from
#   AUDIT_REQUIREMENTS  requirements file (default requirements.txt)
#   PYTHON  interpreter with pip-audit installed (default .venv/bin/python)
set -uo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-.venv/bin/python}"
service="${AUDIT_SERVICE:-pypi}"
requirements="${AUDIT_REQUIREMENTS:-requirements.txt}"

if ! "$python" -m pip_audit --version >/dev/null 2>&1; then
  echo "audit: pip-audit is not installed for $python (pip install -r requirements-dev.txt)" >&2
  exit 2
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
echo "audit: pip-audit -r $requirements --no-deps (vulnerability service: $service)"
"$python" -m pip_audit -r "$requirements" --no-deps --disable-pip --strict \
  --vulnerability-service "$service" --progress-spinner off --desc on 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

if grep -qiE "could not be audited|ConnectionError|Max retries exceeded|Failed to resolve|HTTPError|Name or service not known|timed out" "$log"; then
  echo "" >&2
  echo "audit: FAILED TO AUDIT -- the vulnerability service ($service) could not be queried for every" >&2
  echo "audit: dependency (see the errors above). Nothing was checked; this is not a pass." >&2
  echo "audit: Run where PyPI's JSON API (pypi.org/pypi/<name>/<version>/json) or api.osv.dev is" >&2
  echo "audit: reachable, or try AUDIT_SERVICE=osv." >&2
  exit 2
fi
if [ "$status" -ne 0 ]; then
  if grep -qiE "^Found [0-9]+ known vulnerabilit" "$log"; then
    echo "audit: known vulnerabilities found (see above)" >&2
    exit 1
  fi
  echo "audit: pip-audit failed with status $status without a vulnerability report: treating as not audited" >&2
  exit 2
fi
echo "audit: every dependency audited, no known vulnerabilities"
exit 0
