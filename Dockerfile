# Tourniquet: one image, four services. `SERVICE` picks which one a container runs:
#   docker run -e SERVICE=decider … tourniquet   →   node bin/tourniquet.js --log-level info serve decider
# TypeScript runs through tsx's loader (a runtime dependency), so there is no build step.
# Configuration comes from the environment (TOURNIQUET_*, see docs/configuration.md) or a YAML file.

FROM node:24-bookworm-slim AS deps
WORKDIR /app
# better-sqlite3 (the embedded store, also used for the projector's views) compiles from source when
# no prebuilt binary matches the platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    SERVICE=projector \
    TOURNIQUET_DATA_DIR=/data \
    TOURNIQUET_API_HOST=0.0.0.0 \
    TOURNIQUET_LOG_LEVEL=info
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
# The projector serves the HTTP API (and /healthz, /readyz) here; the other services open no port.
EXPOSE 7420
CMD ["sh", "-c", "exec node bin/tourniquet.js --log-level \"${TOURNIQUET_LOG_LEVEL:-info}\" serve \"$SERVICE\""]
