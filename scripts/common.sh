# Shared by scripts/run and scripts/test: installing what is missing (idempotently) and building the
# portal. Sourced, not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# One build cache for every clone of the project on this machine (CI reuses it when it exists).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/licentia/target}"
SITE="$ROOT/target/site"
SERVER_BIN="$CARGO_TARGET_DIR/release/server"
# .cargo/config.toml builds everything with Leptos's erased components; a RUSTFLAGS of the
# caller's would replace that setting, and a server built otherwise than its bundle renders HTML
# the bundle cannot hydrate. Keep the flag in either case.
if [ -n "${RUSTFLAGS:-}" ] && [[ "$RUSTFLAGS" != *erase_components* ]]; then
  export RUSTFLAGS="$RUSTFLAGS --cfg erase_components"
fi
if [ -n "${CARGO_ENCODED_RUSTFLAGS:-}" ] && [[ "$CARGO_ENCODED_RUSTFLAGS" != *erase_components* ]]; then
  export CARGO_ENCODED_RUSTFLAGS="$CARGO_ENCODED_RUSTFLAGS"$'\x1f--cfg\x1ferase_components'
fi

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ensure_apt PACKAGE...: installs the Debian packages that are not installed yet.
APT_UPDATED=
ensure_apt() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  if [ -z "$APT_UPDATED" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_node() {
  command -v node >/dev/null && command -v npm >/dev/null || ensure_apt nodejs npm
}

ensure_wasm_target() {
  rustup target list --installed | grep -qx wasm32-unknown-unknown || {
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  }
}

# wasm-bindgen-cli must be exactly the version of the wasm-bindgen crate in Cargo.lock.
ensure_wasm_bindgen() {
  local want have
  want=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock")
  have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
  [ "$have" = "$want" ] && return 0
  log "installing wasm-bindgen-cli $want (once; a few minutes)"
  # Its own lock file names a crate version this registry lacks, hence no --locked; the version
  # itself is exact. LTO off: the tool runs once per build, its speed does not matter.
  env -u CARGO_TARGET_DIR CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install wasm-bindgen-cli --version "=$want" --quiet
}

# npm packages (binaryen's wasm-opt, Playwright's test runner), exactly as package-lock.json says.
ensure_npm_packages() {
  ensure_node
  if [ ! -x "$ROOT/node_modules/.bin/wasm-opt" ] || [ "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]; then
    log "installing npm packages"
    (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# build_site: the optimised WebAssembly bundle, CSS and static files under target/site, and the
# release server binary.
# Python tools of the API checks (Schemathesis) in a virtual environment of our own, from PyPI,
# reinstalled when api-tests/requirements.txt changes.
PY_VENV="${LICENTIA_VENV:-$HOME/.cache/licentia/venv}"
ensure_python_tools() {
  if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    ensure_apt python3 python3-venv
  fi
  local stamp="$PY_VENV/.requirements"
  if [ ! -x "$PY_VENV/bin/schemathesis" ] || ! cmp -s "$ROOT/api-tests/requirements.txt" "$stamp"; then
    log "installing Python tools (api-tests/requirements.txt)"
    python3 -m venv "$PY_VENV"
    "$PY_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/api-tests/requirements.txt"
    cp "$ROOT/api-tests/requirements.txt" "$stamp"
  fi
}

build_site() {
  ensure_wasm_target
  ensure_wasm_bindgen
  ensure_npm_packages
  log "building the portal (WebAssembly)"
  cargo build --quiet -p frontend --lib --target wasm32-unknown-unknown --profile wasm-release
  rm -rf "$SITE"
  mkdir -p "$SITE/pkg"
  wasm-bindgen --target web --no-typescript --out-dir "$SITE/pkg" --out-name licentia \
    "$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/frontend.wasm"
  "$ROOT/node_modules/.bin/wasm-opt" -Oz \
    --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$SITE/pkg/licentia_bg.wasm" -o "$SITE/pkg/licentia_bg.wasm"
  cp "$ROOT/style/main.css" "$SITE/pkg/licentia.css"
  gzip -9 -k -f "$SITE/pkg/licentia_bg.wasm" "$SITE/pkg/licentia.js" "$SITE/pkg/licentia.css"
  # Brotli beside gzip (the server serves whichever the browser accepts), with Node's zlib.
  node -e 'const fs = require("fs"), z = require("zlib");
    for (const f of process.argv.slice(1)) fs.writeFileSync(f + ".br", z.brotliCompressSync(fs.readFileSync(f),
      { params: { [z.constants.BROTLI_PARAM_QUALITY]: 11, [z.constants.BROTLI_PARAM_SIZE_HINT]: fs.statSync(f).size } }));' \
    "$SITE/pkg/licentia_bg.wasm" "$SITE/pkg/licentia.js" "$SITE/pkg/licentia.css"
  log "portal: $(stat -c %s "$SITE/pkg/licentia_bg.wasm") bytes of WebAssembly, $(stat -c %s "$SITE/pkg/licentia_bg.wasm.br") brotli, $(stat -c %s "$SITE/pkg/licentia_bg.wasm.gz") gzip"
  cp -R "$ROOT/public/." "$SITE/"
  log "building the server and the workstation CLI (release)"
  cargo build --quiet -p server -p client --release
}
