#!/usr/bin/env bash
# Install what the project needs into this Python (CPU):
#   bash tools/install.sh          # requirements.txt and the oneDNN headers
#   bash tools/install.sh --test   # also requirements-test.txt: pytest, torch, the deployment back ends,
#                                  # the web demo and Playwright, and Debian's Chromium for its browser test
# The headers (onednn-devel) let CPU training build its oneDNN convolution (ops/onednn_conv);
# they are installed without their dependencies, since the Paddle wheel already ships the library
# and the package would pull an 84 MB second copy of it.
# GPU: see docs/training.md (Paddle's GPU wheel instead of requirements.txt's CPU one).
set -euo pipefail
cd "$(dirname "$0")/.."

ONEDNN_HEADERS=onednn-devel==2025.0.1  # oneDNN 3.6 headers: the version of the wheel's libdnnl

case ${1:-} in
    '') requirements=(-r requirements.txt) ;;
    --test) requirements=(-r requirements.txt -r requirements-test.txt) ;;
    *) echo "usage: bash tools/install.sh [--test]" >&2; exit 2 ;;
esac
python -m pip install --quiet "${requirements[@]}"
python -m pip install --quiet --no-deps "${ONEDNN_HEADERS}"
echo "installed: ${requirements[*]} and ${ONEDNN_HEADERS} (--no-deps)"
if [[ ${1:-} == --test ]] && ! command -v chromium >/dev/null; then
    # The browser test of the web demo drives Debian's Chromium; without it that test is skipped.
    if command -v apt-get >/dev/null && [[ $(id -u) -eq 0 ]]; then
        export DEBIAN_FRONTEND=noninteractive
        if apt-get install -y -q chromium >/dev/null 2>&1 \
                || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; }; then
            echo "installed: chromium (Debian)"
        else
            echo "chromium could not be installed: the web demo's browser test will be skipped"
        fi
    else
        echo "no chromium and no apt-get as root: the web demo's browser test will be skipped"
    fi
fi
