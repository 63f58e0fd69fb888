#!/usr/bin/env bash
# Repeats the Dockerfile's steps without Docker (no engine runs here): build stage, runtime stage
# with `npm ci --omit=dev`, start as a non-root user with production settings, then the
# HEALTHCHECK command and a signed order callback. Exits non-zero on any failure.
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

echo "docker-mirror: build stage"
mkdir -p "$work/build"
cp "$root/package.json" "$root/package-lock.json" "$root/tsconfig.json" "$root/tsconfig.build.json" "$work/build/"
cp -r "$root/src" "$root/schemas" "$work/build/"
(cd "$work/build" && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)

echo "docker-mirror: runtime stage"
mkdir -p "$work/app" "$work/data"
cp "$root/package.json" "$root/package-lock.json" "$work/app/"
(cd "$work/app" && npm ci --omit=dev --no-audit --no-fund --loglevel=error)
cp -r "$work/build/dist" "$work/app/dist"
cp -r "$root/schemas" "$work/app/schemas"
cp -r "$root/samples" "$work/app/samples"
cp "$root/openapi.yaml" "$work/app/openapi.yaml"
mkdir -p "$work/app/scripts"
cp "$root/scripts/orderbridge.mjs" "$root/scripts/build-if-stale.mjs" "$root/scripts/healthcheck.mjs" "$work/app/scripts/"
for dev in typescript tsx supertest; do
  if [ -d "$work/app/node_modules/$dev" ]; then echo "docker-mirror: dev dependency $dev in the runtime image" >&2; exit 1; fi
done

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
(cd "$work/app" && NODE_ENV=production PORT=$port DATA_DIR="$work/data" SP_HMAC_SECRETS=$secret LOG_LEVEL=warn \
  exec "${run_as[@]}" node dist/main.js > "$work/server.log" 2>&1) &
pid=$!

echo "docker-mirror: HEALTHCHECK"
for _ in $(seq 1 50); do
  if (cd "$work/app" && PORT=$port node scripts/healthcheck.mjs); then
    healthy=1; break
  fi
  sleep 0.2
done
if [ -z "${healthy:-}" ]; then echo "docker-mirror: the service never became healthy" >&2; cat "$work/server.log" >&2; exit 1; fi

body='{"customerId":"1","customerEmail":"a@example.com","platformCustomerId":"P1","salesOrderToken":"docker-mirror","currency":"USD","payment":{},"shippingAddress":{"city":"X"},"items":[{"productSku":"RUBY-RED","qty":"1","subscription":{"id":"s"}}]}'
sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" | sed 's/^.* //')
status=$(curl -s -o "$work/response.json" -w '%{http_code}' -X POST "http://127.0.0.1:$port/callbacks/subscribe-pro/order" \
  -H 'Content-Type: application/json' -H "Sp-Hmac: $sig" --data-binary "$body")
if [ "$status" != "201" ]; then echo "docker-mirror: callback answered $status" >&2; cat "$work/response.json" "$work/server.log" >&2; exit 1; fi
if [ "$(id -u)" = "0" ] && [ "$(stat -c %u "$work/data/orderbridge.sqlite")" != "65534" ]; then
  echo "docker-mirror: the database was not written by the unprivileged user" >&2; exit 1
fi
openapi=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/openapi.json")
if [ "$openapi" != "200" ]; then echo "docker-mirror: /openapi.json answered $openapi (openapi.yaml missing from the image?)" >&2; exit 1; fi
# The orderbridge command in the image: migrate (needs no callback secret) and config check.
if ! (cd "$work/app" && NODE_ENV=production DATA_DIR="$work/data" "${run_as[@]}" node scripts/orderbridge.mjs migrate > "$work/cli.log" 2>&1) \
  || ! (cd "$work/app" && NODE_ENV=production DATA_DIR="$work/data" SP_HMAC_SECRETS=$secret "${run_as[@]}" node scripts/orderbridge.mjs config check >> "$work/cli.log" 2>&1); then
  echo "docker-mirror: the orderbridge command failed in the runtime image:" >&2; cat "$work/cli.log" >&2; exit 1
fi
# orderbridge send reads its built-in samples from the package (samples/), here from dist/.
if ! (cd "$work/app" && SP_HMAC_SECRETS=$secret "${run_as[@]}" node scripts/orderbridge.mjs send subscribe-pro minimal --to "http://127.0.0.1:$port/callbacks/subscribe-pro/order" >> "$work/cli.log" 2>&1); then
  echo "docker-mirror: orderbridge send failed in the runtime image:" >&2; cat "$work/cli.log" >&2; exit 1
fi
echo "docker-mirror: ok (healthy, signed callback placed as an unprivileged user, OpenAPI served, orderbridge migrate, config check and send run)"
