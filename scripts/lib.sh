# Shared by the scripts: run from the repository root, with one target dir.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
HOST_BIN="$CARGO_TARGET_DIR/host/gatehouse-host"

# Guest crates: the app's components, the middleware and the test components.
app_components() { sed -n 's/^\[component\.\([a-z0-9-]*\)\]$/\1/p' spin.toml; }
test_components() { ls tests/components; }
# Components Gatehouse ships for other apps' spin.toml (HTTP middleware),
# not served by its own; tests/components_world.rs lists the same.
middleware_components() { echo guard; }

ensure_wasm_target() {
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "installing the wasm32-wasip2 target" >&2
    rustup target add wasm32-wasip2
  fi
}

# What the tests need beyond Rust, installed by scripts/test itself so a
# fresh machine needs nothing else. Each step is a no-op once done.

# Whether this shell may install Debian packages.
can_apt_get() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }

# The Python environment of the tests (PyJWT, cryptography, schemathesis),
# pinned in tests/requirements.txt, in a virtualenv under the target dir;
# rebuilt when the requirements change. Exports GATEHOUSE_PYTHON, the
# interpreter the end-to-end tests and the fuzz run use.
PY_ENV="$CARGO_TARGET_DIR/py"
ensure_python_env() {
  local wanted stamp="$PY_ENV/.requirements.sha256"
  wanted="$(sha256sum tests/requirements.txt | cut -d' ' -f1)"
  if [ ! -x "$PY_ENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    command -v python3 >/dev/null || { echo "python3 is not installed (apt-get install python3 python3-venv)" >&2; return 1; }
    echo "installing tests/requirements.txt into $PY_ENV" >&2
    rm -rf "$PY_ENV"
    if ! python3 -m venv "$PY_ENV" >/dev/null 2>&1; then
      # Debian's python3 leaves venv (ensurepip) to a package of its own.
      can_apt_get || { echo "python3 cannot make a virtualenv (apt-get install python3-venv)" >&2; return 1; }
      apt_install python3-venv
      rm -rf "$PY_ENV"
      python3 -m venv "$PY_ENV"
    fi
    "$PY_ENV/bin/python" -m pip install -q --disable-pip-version-check -r tests/requirements.txt
    echo "$wanted" > "$stamp"
  fi
  export GATEHOUSE_PYTHON="$PY_ENV/bin/python"
}

# `npm ci` for every Node server the tests run (tests/*/package-lock.json),
# when node_modules is missing or was installed from another lock file.
ensure_node_deps() {
  local lock dir wanted
  for lock in tests/*/package-lock.json; do
    [ -e "$lock" ] || continue
    dir="$(dirname "$lock")"
    wanted="$(sha256sum "$lock" | cut -d' ' -f1)"
    if [ "$(cat "$dir/node_modules/.lock.sha256" 2>/dev/null)" != "$wanted" ]; then
      command -v npm >/dev/null || { echo "npm is not installed (apt-get install nodejs npm)" >&2; return 1; }
      echo "npm ci in $dir" >&2
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
      echo "$wanted" > "$dir/node_modules/.lock.sha256"
    fi
  done
}

# redis-server for the Redis backend tests (they start their own).
ensure_redis() {
  command -v redis-server >/dev/null && return 0
  can_apt_get || { echo "redis-server is not installed: run \`sudo apt-get install redis-server\`, then scripts/test again" >&2; return 1; }
  apt_install redis-server
}

# apt-get's chatter is shown only when it fails.
apt_install() {
  local out
  echo "installing $* (apt-get)" >&2
  out="$(mktemp)"
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >"$out" 2>&1; then
    cat "$out" >&2
    rm -f "$out"
    return 1
  fi
  rm -f "$out"
}
