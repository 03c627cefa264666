#!/usr/bin/env bash
# Installs whatever is missing for blackout on a Debian machine (root):
# the Debian packages listed in scripts/debian-packages.txt and those the
# probe kinds and lab services declare (scripts/plugin-packages.sh), and the npm
# dependencies. Idempotent and quiet when everything is there, so `npm test`
# and `npm run demo` can call it every time.
set -euo pipefail
cd "$(dirname "$0")/.."

want=()
while read -r line; do
  pkg=${line%%#*}; pkg=$(echo "$pkg" | xargs)
  [ -n "$pkg" ] && want+=("$pkg")
done < scripts/debian-packages.txt
# and what each probe kind and lab service declares in its own file (a failure here stops the setup)
declared=$(bash scripts/plugin-packages.sh)
for pkg in $declared; do want+=("$pkg"); done
mapfile -t want < <(printf '%s\n' "${want[@]}" | sort -u)

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "blackout setup: missing Debian packages (${missing[*]}); run as root to install them" >&2
    exit 2
  fi
  echo "blackout setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # a fresh machine may have no package lists yet
  apt-get update -qq
  # the postgresql package would start a system cluster; the lab runs its own, so keep services from starting
  # (only when the machine has no policy of its own, which is then left alone)
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  # apt's chatter is kept in memory, not in a file left behind: shown (its tail) only when it failed
  if ! apt_out=$(apt-get install -y -qq --no-install-recommends "${missing[@]}" 2>&1); then
    printf '%s\n' "$apt_out" | tail -20 >&2; exit 1
  fi
fi

# npm dependencies: install when node_modules is missing or older than the lock file
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "blackout setup: installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
fi
