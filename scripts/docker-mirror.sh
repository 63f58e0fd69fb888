#!/usr/bin/env bash
# Repeats the Dockerfile's steps without Docker (no engine runs here): the build stage in a copy of
# the build context (.dockerignore applied), npm ci, npm pack, npm prune --omit=dev; the runtime
# stage as that package with the pruned node_modules; then, as a non-root user with production
# settings, the HEALTHCHECK command, a signed order callback, the OpenAPI document, and the
# orderbridge command. Exits non-zero on any failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pid=""
cleanup() {
  # The service's own process (exec'd below): SIGTERM, then wait for its graceful shutdown.
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "docker-mirror: $*" >&2; exit 1; }

echo "docker-mirror: build stage"
# COPY package.json package-lock.json, npm ci, COPY . . (the context: .dockerignore applied)
mkdir -p "$work/build" "$work/pkg"
cp "$root/package.json" "$root/package-lock.json" "$work/build/"
(cd "$work/build" && npm ci --no-audit --no-fund --loglevel=error)
node "$root/scripts/docker-context.mjs" "$work/build"
for left_out in .git test bench data dist; do
  [ ! -e "$work/build/$left_out" ] || fail "$left_out is in the build context (.dockerignore)"
done
# npm pack (prepack builds dist/), unpack, production dependencies only
(cd "$work/build" && npm pack --pack-destination "$work/pkg" --loglevel=error > /dev/null \
  && tar -xzf "$work"/pkg/*.tgz -C "$work/pkg" \
  && npm prune --omit=dev --no-audit --no-fund --loglevel=error \
  && mv node_modules "$work/pkg/package/node_modules")

echo "docker-mirror: runtime stage"
# COPY --from=build /pkg/package ./
cp -a "$work/pkg/package" "$work/app"
mkdir -p "$work/data"
for dev in typescript typescript-go tsx supertest eslint prettier; do
  [ ! -d "$work/app/node_modules/$dev" ] || fail "dev dependency $dev in the runtime image"
done
for source in src test bench tsconfig.json; do
  [ ! -e "$work/app/$source" ] || fail "$source in the runtime image (package.json \"files\")"
done
[ -x "$work/app/scripts/orderbridge.mjs" ] || fail "scripts/orderbridge.mjs is not executable (the image links it as /usr/local/bin/orderbridge)"

# USER node: run as an unprivileged user when we are root.
run_as=()
if [ "$(id -u)" = "0" ]; then
  chown -R 65534:65534 "$work/data"
  chmod o+rx "$work"
  run_as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
secret=docker-mirror-secret
# exec: $! is then node itself (through setpriv), not a shell that would outlive the kill.
# BUILD_COMMIT as the image's ENV sets it from --build-arg REVISION.
revision=$(git rev-parse HEAD 2>/dev/null || true)
(cd "$work/app" && NODE_ENV=production PORT=$port DATA_DIR="$work/data" SP_HMAC_SECRETS=$secret LOG_LEVEL=warn BUILD_COMMIT="$revision" \
  exec "${run_as[@]}" node dist/main.js > "$work/server.log" 2>&1) &
pid=$!

echo "docker-mirror: HEALTHCHECK"
for _ in $(seq 1 50); do
  if (cd "$work/app" && PORT=$port node scripts/healthcheck.mjs > "$work/health.log"); then
    healthy=1; break
  fi
  sleep 0.2
done
if [ -z "${healthy:-}" ]; then cat "$work/health.log" "$work/server.log" >&2; fail "the service never became healthy"; fi
grep -q '/readyz: 200' "$work/health.log" || fail "the HEALTHCHECK did not ask /readyz: $(cat "$work/health.log")"

body='{"customerId":"1","customerEmail":"a@example.com","platformCustomerId":"P1","salesOrderToken":"docker-mirror","currency":"USD","payment":{},"shippingAddress":{"city":"X"},"items":[{"productSku":"RUBY-RED","qty":"1","subscription":{"id":"s"}}]}'
sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" | sed 's/^.* //')
status=$(curl -s -o "$work/response.json" -w '%{http_code}' -X POST "http://127.0.0.1:$port/callbacks/subscribe-pro/order" \
  -H 'Content-Type: application/json' -H "Sp-Hmac: $sig" --data-binary "$body")
if [ "$status" != "201" ]; then cat "$work/response.json" "$work/server.log" >&2; fail "callback answered $status"; fi
if [ "$(id -u)" = "0" ] && [ "$(stat -c %u "$work/data/orderbridge.sqlite")" != "65534" ]; then
  fail "the database was not written by the unprivileged user"
fi
openapi=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/openapi.json")
[ "$openapi" = "200" ] || fail "/openapi.json answered $openapi (openapi.yaml missing from the image?)"
curl -s "http://127.0.0.1:$port/metrics" | grep -q "^orderbridge_build_info{.*commit=\"$revision\"" \
  || fail "orderbridge_build_info does not carry the commit built ($revision)"
# The orderbridge command in the image: migrate (needs no callback secret) and config check.
if ! (cd "$work/app" && NODE_ENV=production DATA_DIR="$work/data" "${run_as[@]}" node scripts/orderbridge.mjs migrate > "$work/cli.log" 2>&1) \
  || ! (cd "$work/app" && NODE_ENV=production DATA_DIR="$work/data" SP_HMAC_SECRETS=$secret "${run_as[@]}" node scripts/orderbridge.mjs config check >> "$work/cli.log" 2>&1); then
  cat "$work/cli.log" >&2; fail "the orderbridge command failed in the runtime image"
fi
# orderbridge send reads its built-in samples from the package (samples/), here from dist/.
if ! (cd "$work/app" && SP_HMAC_SECRETS=$secret "${run_as[@]}" node scripts/orderbridge.mjs send subscribe-pro minimal --to "http://127.0.0.1:$port/callbacks/subscribe-pro/order" >> "$work/cli.log" 2>&1); then
  cat "$work/cli.log" >&2; fail "orderbridge send failed in the runtime image"
fi
echo "docker-mirror: ok (healthy on /readyz, signed callback placed as an unprivileged user, OpenAPI served, orderbridge migrate, config check and send run)"
