# syntax=docker/dockerfile:1
# orderbridge: the build stage installs every dependency, builds and packs the npm package, then
# prunes to production dependencies; the runtime stage is that package and its node_modules, with
# no compiler, as a non-root user, the embedded SQLite database in the /data volume.
# scripts/docker-mirror.sh repeats these steps without Docker (CI runs it); keep the two in step.

# The newest LTS line (Node.js 26 "Lithium", LTS since 2026-10-28; package.json "engines" lists
# every line orderbridge runs on), pinned to one release so that a rebuild gets the same runtime.
# Bump it on purpose, build and stage together: better-sqlite3's binary is built for its ABI.
ARG NODE_IMAGE=node:26.7.0-trixie-slim

# ---- build: npm ci, npm pack (prepack builds dist/), production dependencies only ---------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary can be fetched; only this stage has
# the toolchain.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# .dockerignore keeps secrets, databases, tests and local builds out of this.
COPY . .
# The image holds what the npm package holds (package.json "files"), nothing else of the sources.
RUN mkdir /pkg \
 && npm pack --pack-destination /pkg --loglevel=error \
 && tar -xzf /pkg/*.tgz -C /pkg \
 && npm prune --omit=dev --no-audit --no-fund \
 && mv node_modules /pkg/package/node_modules

# ---- runtime ----------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ARG NODE_IMAGE
# The commit built (docker build --build-arg REVISION=$(git rev-parse HEAD) .); empty otherwise.
ARG REVISION=""
LABEL org.opencontainers.image.title="orderbridge" \
      org.opencontainers.image.description="Subscription platforms' order events (Subscribe Pro order callbacks, Recharge webhooks) into orders in a commerce platform, exactly once" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/orderbridge/orderbridge" \
      org.opencontainers.image.documentation="https://github.com/orderbridge/orderbridge#readme" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="docker.io/library/${NODE_IMAGE}"
# BUILD_COMMIT: the commit label of orderbridge_build_info (empty without --build-arg REVISION).
ENV NODE_ENV=production \
    PORT=3000 \
    DATA_DIR=/data \
    BUILD_COMMIT="${REVISION}"
WORKDIR /app
COPY --from=build /pkg/package ./
# The orderbridge command (migrate, config check, events, orders, check) on the PATH.
RUN mkdir -p /data && chown node:node /data \
 && ln -s /app/scripts/orderbridge.mjs /usr/local/bin/orderbridge
USER node
VOLUME ["/data"]
EXPOSE 3000
# Healthy means ready: GET /readyz, which answers 503 while the database does not answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "scripts/healthcheck.mjs"]
# docker stop waits 10 s by default before SIGKILL; a graceful stop takes up to SHUTDOWN_TIMEOUT_MS
# (10 s by default) plus about 2 s: run with --stop-timeout 15 (compose: stop_grace_period: 15s).
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
