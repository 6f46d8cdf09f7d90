#!/usr/bin/env bash
# Debian packages the project needs beyond Python: fluidsynth (renders the demo corpus's music),
# espeak-ng (reads its speech corpus aloud) and ffmpeg (decodes MUSDB18 .stem.mp4). Installs what
# is missing when run as root; otherwise prints the one command to run.
set -euo pipefail
need=()
command -v fluidsynth >/dev/null 2>&1 || need+=(fluidsynth)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${need[*]}. Install them with:" >&2
  echo "    sudo apt-get install -y --no-install-recommends ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
echo "installing ${need[*]} ..." >&2
if ! apt-get install -y -q --no-install-recommends "${need[@]}" >/tmp/transfersep_apt.log 2>&1; then
  apt-get update -q >>/tmp/transfersep_apt.log 2>&1
  apt-get install -y -q --no-install-recommends "${need[@]}" >>/tmp/transfersep_apt.log 2>&1 \
    || { echo "apt-get failed; see /tmp/transfersep_apt.log" >&2; exit 1; }
fi
