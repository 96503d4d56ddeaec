#!/usr/bin/env bash
# Renders docs/report.png: the HTML report of a real search, screenshotted by headless Chromium.
#
#   bash docs/render_report.sh [STORE]
#
# Runs the README's default search (fnas on digits: critic, pool and replay on; about 3-5 min on
# 2 cores) into STORE (default: a fresh temporary folder), writes its report to
# docs/report-demo.html, and renders the top of the page to docs/report.png.
# Needs Chromium's headless shell from Debian (apt-get install chromium-headless-shell, or
# chromium); CI does not run this script.
set -euo pipefail
cd "$(dirname "$0")/.."
STORE=${1:-$(mktemp -d)/store}
BROWSER=$(command -v chromium-headless-shell || command -v chromium || true)
if [ -z "$BROWSER" ]; then
    echo "render_report.sh: no Chromium: apt-get install chromium-headless-shell" >&2
    exit 2
fi
if ! fnas runs --store "$STORE" 2>/dev/null | grep -q '^demo\b'; then
    fnas search --store "$STORE" --name demo --no-progress
fi
fnas report demo --store "$STORE" --out docs/report-demo.html
"$BROWSER" --headless --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=1 \
    --window-size=1150,2400 --screenshot="$PWD/docs/report.png" "file://$PWD/docs/report-demo.html" \
    2>/dev/null
echo "docs/report.png and docs/report-demo.html written (store: $STORE)"
