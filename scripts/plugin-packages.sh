#!/usr/bin/env bash
# Prints the Debian packages that the probe kinds and the lab services declare
# in their own files (`packages: ['a', 'b']` on the definition), one per line,
# sorted: scripts/setup.sh installs them with scripts/debian-packages.txt.
# Read from the sources with grep, not by loading them: it runs before any npm
# module is installed. test/unit/plugin-packages.test.ts checks that it finds
# exactly what the loaded plug-ins declare.
set -euo pipefail
cd "$(dirname "$0")/.."
for f in src/probes/*.ts src/lab/services/*.ts; do
  # the array may span lines: read the file as one line
  tr '\n' ' ' < "$f" | grep -o "packages: \[[^]]*\]" || true
done | { grep -o "'[^']*'" || true; } | tr -d "'" | sort -u
