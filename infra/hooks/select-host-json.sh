#!/bin/sh
# azd service hook: package the host.json of the selected Durable backend profile.
#   prepackage:  select-host-json.sh swap     postpackage:  select-host-json.sh restore
# With DURABLE_BACKEND=DurableTaskScheduler (`azd env set DURABLE_BACKEND ...`), `swap`
# puts infra/host.dts.json in place of host.json for the package and `restore` puts the
# Azure Storage host.json back. With the default backend both do nothing.
# Run from the service directory (the repository root), as azd runs service hooks.
set -eu
mode=${1:?usage: select-host-json.sh swap|restore}
backup=.azure/host.azurestorage.json

if [ "$mode" = restore ] || [ "$mode" = swap ]; then
  # A backup left by an interrupted run goes back first, so a swap never saves a DTS host.json.
  if [ -f "$backup" ]; then
    mv "$backup" host.json
  fi
fi
if [ "$mode" = swap ] && [ "${DURABLE_BACKEND:-AzureStorage}" = DurableTaskScheduler ]; then
  mkdir -p .azure
  cp host.json "$backup"
  cp infra/host.dts.json host.json
  echo "select-host-json: packaging infra/host.dts.json as host.json (Durable Task Scheduler profile)"
fi
