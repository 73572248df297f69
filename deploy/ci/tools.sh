#!/usr/bin/env bash
# The tools the ops tests call: promtool (Debian's prometheus package) and docker-compose (config -q).
# Idempotent (installs only what is missing); where apt cannot install them it says why and the tests
# that need them skip with that reason.
set -uo pipefail
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v docker-compose >/dev/null || missing+=(docker-compose)
[ ${#missing[@]} = 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "ops tools: cannot install ${missing[*]} here (needs root and apt-get); their tests will skip"
    exit 0
fi
echo "ops tools: installing ${missing[*]} (Debian)"
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null; }; then
    echo "ops tools: apt-get could not install ${missing[*]}; their tests will skip"
fi
exit 0
