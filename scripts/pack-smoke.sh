#!/usr/bin/env bash
# The npm package as a user gets it: npm pack (prepack builds dist/), the tarball installed into an
# empty project with production dependencies only, then the installed command: orderbridge --help,
# orderbridge serve (production settings, its own data dir, a free port read from its log), and
# orderbridge check and send against that server; then a graceful stop. Needs the npm registry (the
# dependencies). CI runs it; it runs the same anywhere: bash scripts/pack-smoke.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "pack-smoke: $*" >&2; exit 1; }

echo "pack-smoke: npm pack"
(cd "$root" && npm pack --pack-destination "$work" --loglevel=error > /dev/null)
tarball=$(ls "$work"/*.tgz)
listing=$(tar -tzf "$tarball")
for f in package.json LICENSE README.md openapi.yaml dist/main.js dist/cli/main.js scripts/orderbridge.mjs \
  schemas/subscribe-pro/order-callback-request.schema.json samples/subscribe-pro/minimal.json; do
  grep -qxF "package/$f" <<< "$listing" || fail "$f is not in the package"
done
if grep -E '^package/(src|test|bench|\.ci|data|node_modules)/|^package/scripts/(test|start|docker-|pack-smoke)|\.sqlite|/\.env' <<< "$listing"; then
  fail "the package holds files only development needs (above): package.json \"files\""
fi

echo "pack-smoke: npm install --omit=dev $(basename "$tarball") into an empty project"
mkdir "$work/project" "$work/data"
# better-sqlite3's install script fetches or builds its native binding; a project allows it.
printf '{ "name": "pack-smoke", "private": true, "allowScripts": { "better-sqlite3": true } }\n' > "$work/project/package.json"
(cd "$work/project" && npm install --omit=dev --no-audit --no-fund --loglevel=error "$tarball")
for dev in typescript typescript-go tsx supertest eslint prettier; do
  [ ! -d "$work/project/node_modules/$dev" ] || fail "dev dependency $dev was installed"
done
# npx --no: the installed command or a failure, never a download of whatever the registry has.
ob() { (cd "$work/project" && npx --no -- orderbridge "$@"); }

echo "pack-smoke: orderbridge --help"
help=$(ob --help) || fail "orderbridge --help failed"
for cmd in serve migrate check send "config"; do
  grep -qE "^  $cmd\b" <<< "$help" || fail "orderbridge --help does not list $cmd:"$'\n'"$help"
done

echo "pack-smoke: orderbridge --version"
version=$(ob --version) || fail "orderbridge --version failed"
expected=$(node -p "require('$root/package.json').version")
[ "$version" = "$expected" ] || fail "orderbridge --version printed \"$version\", package.json says $expected"

echo "pack-smoke: orderbridge serve"
secret=pack-smoke-secret
# exec: $! is node itself (the bin's #!/usr/bin/env node), so the stop below reaches the service.
(cd "$work/project" && NODE_ENV=production PORT=0 HOST=127.0.0.1 DATA_DIR="$work/data" SP_HMAC_SECRETS=$secret LOG_FORMAT=json \
  exec node_modules/.bin/orderbridge serve > "$work/serve.log" 2>&1) &
pid=$!
port=""
for _ in $(seq 1 150); do
  port=$(grep -oE 'listening on http://[^ ]*:[0-9]+' "$work/serve.log" | head -n 1 | grep -oE '[0-9]+$' || true)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log" >&2; pid=""; fail "orderbridge serve exited before listening"; }
  sleep 0.2
done
[ -n "$port" ] || { cat "$work/serve.log" >&2; fail "orderbridge serve did not listen within 30 s"; }

echo "pack-smoke: orderbridge check http://127.0.0.1:$port/callbacks/subscribe-pro/order"
if ! ob check "http://127.0.0.1:$port/callbacks/subscribe-pro/order" --secret "$secret" --no-progress > "$work/check.log" 2>&1; then
  cat "$work/check.log" "$work/serve.log" >&2
  fail "orderbridge check failed against the installed orderbridge serve"
fi
grep -qE "[1-9][0-9]* passed, 0 failed" "$work/check.log" || { cat "$work/check.log" >&2; fail "orderbridge check did not pass every check"; }
echo "pack-smoke: check: $(grep -oE "[0-9]+ passed, [0-9]+ failed" "$work/check.log")"
# A built-in sample, read from the installed package's samples/.
ob send subscribe-pro minimal --to "http://127.0.0.1:$port/callbacks/subscribe-pro/order" --secret "$secret" > "$work/send.log" 2>&1 \
  || { cat "$work/send.log" >&2; fail "orderbridge send subscribe-pro minimal failed"; }

echo "pack-smoke: stop (SIGTERM)"
kill -TERM "$pid"
code=0
wait "$pid" || code=$?
pid=""
[ "$code" = "0" ] || { cat "$work/serve.log" >&2; fail "orderbridge serve exited with $code on SIGTERM"; }
echo "pack-smoke: ok ($(basename "$tarball"): installed with production dependencies, --help, serve, check passed, a sample sent, stopped gracefully)"
