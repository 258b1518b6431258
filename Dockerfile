# vigil's container image.
#   docker build -t vigil --build-arg VIGIL_VERSION="$(node -p 'require("./package.json").version')" .
#   docker run -d --name vigil -p 8080:8080 -v vigil-data:/data --stop-timeout 30 vigil
# test/container/image.test.ts builds it with podman (.ci/container-image) and runs it: what the
# README and the runbooks promise of the image is checked there; dockerfile.test.ts lints this file
# against package.json, config/default.yaml and docker-compose.yml.
#
# Node 20 is what the project pins (engines, .ci/run, the better-sqlite3 12 and vitest 4 lines).
# Node 22 LTS works once the better-sqlite3/vitest pins move: change both node FROM lines together.

# ---- build: compile TypeScript and the native better-sqlite3 addon, keep production deps only ----
FROM node:20-bookworm-slim AS build

# better-sqlite3 is a native addon: npm ci compiles it with node-gyp when no prebuilt binary
# matches, which needs python3, make and g++ (only in this stage, never in the runtime image).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# The manifests first, so the dependency layer is rebuilt only when they change.
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# Then only what runs is kept: better-sqlite3's compile output (build/Release/obj*, sqlite3.a, the
# test extension, makefiles: 17 MB) and its C sources go, leaving lib/ and better_sqlite3.node, and
# the @scope folders npm prune emptied go too.
RUN npm run build \
 && npm prune --omit=dev \
 && cd node_modules/better-sqlite3 \
 && mv build/Release/better_sqlite3.node . \
 && rm -rf build deps src binding.gyp \
 && mkdir -p build/Release \
 && mv better_sqlite3.node build/Release/ \
 && cd /app \
 && find node_modules -mindepth 1 -maxdepth 1 -type d -name '@*' -empty -delete

# ---- k6: the load-run probe kind spawns `k6` from PATH. A static Go binary, so it runs on Debian.
# k6 2.x changed the default summary export: move past 1.x only after checking src/probers/k6.ts.
# Not pinned by digest yet: no image registry is reachable where this image is built and tested, so
# the tag below has never been pulled here (.ci/stand-in-bases puts a labelled stand-in under its
# name). Where it can be pulled, pin it: FROM grafana/k6:<tag>@sha256:<digest `docker pull` prints>.
# test/container/image.test.ts checks that `k6 version` runs in the image and /usr/bin/k6 is the path.
FROM grafana/k6:1.7.1 AS k6

# ---- runtime ----
FROM node:20-bookworm-slim

ARG VIGIL_VERSION=0.1.0
# The repository's public address, once it has one: --build-arg VIGIL_SOURCE=https://...
ARG VIGIL_SOURCE=""
LABEL org.opencontainers.image.title="vigil" \
      org.opencontainers.image.description="Keeps a production system launch-ready: scheduled probes, durable alerting, a 30-day launch report." \
      org.opencontainers.image.source="${VIGIL_SOURCE}" \
      org.opencontainers.image.licenses="NOASSERTION" \
      org.opencontainers.image.version="${VIGIL_VERSION}"

# tini is PID 1: it forwards SIGTERM (graceful shutdown) and SIGHUP (config reload) to node and
# reaps the zombies that k6, pg_restore and psql children leave when their group is killed.
# postgresql-client: pg_restore, psql, createdb, dropdb and pg_amcheck for PostgreSQL restore
# drills (bookworm ships 15). ca-certificates: k6 and libpq verify TLS against the system store
# (node uses its own bundled one). iputils-ping: the icmp probe sends echo requests through `ping`
# (the image runs as a non-root user; Debian ships ping with the cap_net_raw file capability, so the
# container needs NET_RAW: Docker grants it by default, podman needs --cap-add NET_RAW).
# chromium + fonts-liberation: the browser probe kind drives /usr/bin/chromium through playwright-core
# (no Playwright browser download); the fonts give screenshots readable text. Adds over 400 MB to the
# image (bookworm: chromium 290 MB and chromium-common 66 MB installed, plus the libraries they pull;
# about 1 GB of the image in all). `--build-arg BROWSER=` builds without them: every other kind
# works, and a browser probe fails naming the missing Chromium.
ARG BROWSER="chromium fonts-liberation"
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini postgresql-client ca-certificates iputils-ping $BROWSER \
 && rm -rf /var/lib/apt/lists/*

# Debian's /usr/bin wrappers do not cover pg_amcheck: put the version's own bin folder first.
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    NODE_ENV=production
# runtime.env, the environment vigil is measured under (test/container/dockerfile.test.ts holds
# these to it): malloc arenas and V8's young generation bounded (what each saves: runtime.env).
ENV MALLOC_ARENA_MAX=2 \
    NODE_OPTIONS=--max-semi-space-size=8

COPY --from=k6 /usr/bin/k6 /usr/bin/k6

# Everything vigil writes lives in /data, the volume. The default config keeps its relative
# paths (./data/vigil.db, ./data/backups), which resolve against the working directory, and
# config/ and probes/ are found there too: so WORKDIR stays /app and /app/data is a symlink to
# /data, rather than moving WORKDIR to /data (which would look for /data/config and /data/probes).
# A mount at /app/data lands in /data as well: Docker follows the symlink inside the image.
RUN groupadd --system --gid 10001 vigil \
 && useradd --system --uid 10001 --gid vigil --home-dir /home/vigil --create-home --shell /usr/sbin/nologin vigil \
 && mkdir -p /app /data \
 && chown vigil:vigil /data \
 && ln -s /data /app/data

WORKDIR /app
# Code, config and probes stay root-owned: the vigil user reads them and cannot change them.
# package.json is needed at run time: its "type": "module" makes node load dist/ as ESM.
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
COPY probes ./probes
# vigil serves its own runbooks (GET /runbooks/…): the shipped vigil-health alert links one.
COPY docs/runbooks ./docs/runbooks
# `vigil` on PATH (docker compose exec vigil vigil check-config / run-once <probe-id>), as package.json's
# bin: a wrapper, since tsc does not mark dist/main.js executable.
RUN printf '#!/bin/sh\nexec node /app/dist/main.js "$@"\n' > /usr/local/bin/vigil \
 && chmod 755 /usr/local/bin/vigil

VOLUME /data
EXPOSE 8080
USER vigil

# slim has no curl: node asks /health itself, with a deadline shorter than the check's timeout.
# PORT overrides service.port, so the check follows it. /health answers 503 naming the failing
# check (database, scheduler, outbox).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "const port = process.env.PORT || 8080; fetch('http://127.0.0.1:' + port + '/health', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# On SIGTERM vigil stops scheduling, lets runs finish within service.shutdownTimeout (10s), writes
# what is queued and closes the database: give it a stop timeout above that (--stop-timeout 30,
# compose stop_grace_period: 30s), or Docker's default 10 s may SIGKILL it mid-flush.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
# What `npm start` runs, without its prestart build (the build stage did it; tsc is not here).
CMD ["node", "dist/main.js"]
