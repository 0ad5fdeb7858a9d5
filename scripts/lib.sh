# Shared by the scripts: run from the repository root, with one target dir.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
HOST_BIN="$CARGO_TARGET_DIR/host/gatehouse-host"

# Guest crates: the app's components and the test components.
app_components() { sed -n 's/^\[component\.\([a-z0-9-]*\)\]$/\1/p' spin.toml; }
test_components() { ls tests/components; }

ensure_wasm_target() {
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "installing the wasm32-wasip2 target" >&2
    rustup target add wasm32-wasip2
  fi
}
