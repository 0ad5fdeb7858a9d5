# Shared by the scripts: run from the repository root, with one target dir.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
HOST_BIN="$CARGO_TARGET_DIR/host/gatehouse-host"

# Guest crates: the app's components, the middleware and the test components.
app_components() { sed -n 's/^\[component\.\([a-z0-9-]*\)\]$/\1/p' spin.toml; }
test_components() { ls tests/components; }
# Components Gatehouse ships for other apps' spin.toml, not served by its
# own: the guard (HTTP middleware) and the gatehouse:client component (a
# dependency); tests/components_world.rs lists the same.
shipped_components() { echo guard client-component; }

# A TCP port on loopback that is free now (the kernel's pick).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

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

# A command from its Debian package, installed when it is missing; where
# this shell cannot install it, says what to run first, then `script` again.
# (redis-server for the Redis backend tests and KV=redis benches, wrk for
# the benches.)
ensure_command() { # command, package, script
  command -v "$1" >/dev/null && return 0
  can_apt_get || { echo "$1 is not installed: run \`sudo apt-get install $2\`, then $3 again" >&2; return 1; }
  apt_install "$2"
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

# Test components written in Python (today tests/guarded-py: a handler behind
# the guard), built by scripts/test (not scripts/build, so that scripts/up
# needs no Python) with componentize-py from the test virtualenv into
# wasi:http@0.3.0 components beside the Rust ones in wasm32-wasip2/release.
# The world is wasi:http/service@0.3.0 from wit/ (its vendored deps). Each is
# built from a copy of its .py files under the target dir (so no __pycache__
# lands in the tree), and only when they, the WIT componentize-py reads
# (wit/*.wit, wit/deps) or componentize-py's version changed since the last
# build (a sha256 stamp beside the .wasm): unchanged, this takes well under a
# second.
python_components() { echo guarded-py; }
build_python_components() {
  local name src out stamp stage wanted version
  ensure_python_env
  version="$("$PY_ENV/bin/componentize-py" --version)"
  mkdir -p "$CARGO_TARGET_DIR/wasm32-wasip2/release"
  for name in $(python_components); do
    src="tests/$name"
    out="$CARGO_TARGET_DIR/wasm32-wasip2/release/${name//-/_}.wasm"
    stamp="$out.sha256"
    wanted="$({
      echo "$version"
      sha256sum "$src"/*.py
      find wit/*.wit wit/deps -type f | LC_ALL=C sort | xargs sha256sum
    } | sha256sum | cut -d' ' -f1)"
    if [ -f "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
      continue
    fi
    echo "building $src with $version" >&2
    stage="$CARGO_TARGET_DIR/python-components/$name"
    rm -rf "$stage"
    mkdir -p "$stage"
    cp "$src"/*.py "$stage/"
    rm -f "$stamp"
    "$PY_ENV/bin/componentize-py" --quiet -d wit -w wasi:http/service@0.3.0 \
      componentize -p "$stage" app -o "$out.partial"
    mv "$out.partial" "$out"
    echo "$wanted" > "$stamp"
  done
}
