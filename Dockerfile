# syntax=docker/dockerfile:1
# orderbridge: build with dev dependencies, run with production dependencies only, as a non-root
# user, with the embedded SQLite database in the /data volume. scripts/docker-mirror.sh repeats
# these steps without Docker (CI runs it); keep the two in step.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: compile TypeScript to dist/ -------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary can be fetched.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY schemas ./schemas
RUN npm run build

# ---- runtime ----------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=3000 \
    DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; the compiler toolchain is removed in the same layer.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force \
 && apt-get purge -y python3 make g++ \
 && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /app/dist ./dist
COPY schemas ./schemas
# The samples `orderbridge send` reads.
COPY samples ./samples
COPY openapi.yaml ./
# The orderbridge command (migrate, config check, events, orders) and the health check.
COPY scripts/orderbridge.mjs scripts/build-if-stale.mjs scripts/healthcheck.mjs ./scripts/
RUN mkdir -p /data && chown node:node /data \
 && ln -s /app/scripts/orderbridge.mjs /usr/local/bin/orderbridge
USER node
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "scripts/healthcheck.mjs"]
# docker stop waits 10 s by default before SIGKILL; a graceful stop takes up to SHUTDOWN_TIMEOUT_MS
# (10 s by default) plus about 2 s: run with --stop-timeout 15 (compose: stop_grace_period: 15s).
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
