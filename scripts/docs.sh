#!/usr/bin/env bash
# Builds the RingSFU module's documentation (DocC catalog in
# Sources/Control/RingSFU.docc) with the toolchain's docc, warnings shown:
#   scripts/docs.sh [output directory, default .build-docs/site]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.build-docs/site}"
graphs=.build-docs/symbol-graphs
rm -rf "$graphs" && mkdir -p "$graphs"
swift build --scratch-path .build-docs --target RingSFU \
    -Xswiftc -emit-symbol-graph -Xswiftc -emit-symbol-graph-dir -Xswiftc "$PWD/$graphs.all"
cp "$graphs.all"/RingSFU.symbols.json "$graphs"/
cp "$graphs.all"/RingSFU@*.symbols.json "$graphs"/ 2>/dev/null || true
docc convert Sources/Control/RingSFU.docc --additional-symbol-graph-dir "$graphs" \
    --fallback-display-name RingSFU --fallback-bundle-identifier org.ringsfu.RingSFU \
    --output-path "$out" --warnings-as-errors
echo "documentation in $out (a static site: serve it with any web server)"
