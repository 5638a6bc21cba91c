#!/usr/bin/env bash
# Offline policy check of the Bicep templates (run by .ci/run).
#
# Checkov parses Bicep itself (no Bicep compiler, no network: --skip-download, no API
# key) and applies its Azure policies. The build fails on any failed policy and on any
# .bicep file Checkov could not parse (Checkov alone only reports parse errors).
# Skipped policies are `// checkov:skip=ID: reason` comments next to the resource.
#
# Checkov gets its own venv, .venv/checkov (under .venv/ so git and ruff ignore it),
# created on first use: resolved together with requirements-dev.txt, pip backtracks to
# checkov 3.1 and downgrades pip-audit's cyclonedx-python-lib (11 -> 5). The version is
# pinned so the policy set only changes when this line does.
# Usage: infra/checkov.sh [path/to/checkov]
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOV_VERSION=3.3.30
checkov=${1:-.venv/checkov/bin/checkov}
if [ $# -eq 0 ] && [ "$("$checkov" --version 2>/dev/null || true)" != "$CHECKOV_VERSION" ]; then
  python3 -m venv --clear .venv/checkov
  .venv/checkov/bin/pip install --quiet "checkov==$CHECKOV_VERSION"
fi
report=$(mktemp -d)
trap 'rm -rf "$report"' EXIT

status=0
"$checkov" --directory infra --framework bicep --skip-download --compact --quiet \
  --output cli --output json --output-file-path "console,$report/results.json" || status=$?

python3 - "$report/results.json" <<'PY'
import json, pathlib, sys

data = json.loads(pathlib.Path(sys.argv[1]).read_text())
reports = data if isinstance(data, list) else [data]
summary = {key: sum(r["summary"][key] for r in reports) for key in ("passed", "failed", "skipped", "parsing_errors")}
bicep_files = sorted(pathlib.Path("infra").rglob("*.bicep"))
print(f"checkov: {summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped, "
      f"{summary['parsing_errors']} parse errors over {len(bicep_files)} .bicep files")
if summary["parsing_errors"]:
    print(f"checkov could not parse {summary['parsing_errors']} .bicep file(s) (multi-line ternaries and other "
          "newer Bicep syntax are not supported by its parser); run checkov without --quiet to see which",
          file=sys.stderr)
    sys.exit(1)
if summary["passed"] == 0:
    print("checkov ran no policy at all: is infra/ empty or the framework wrong?", file=sys.stderr)
    sys.exit(1)
PY
exit "$status"
