# Placeholder until the container issue: a minimal image that runs vigil on its default config.
# Not built on the development machine (no Docker engine there); the container issue adds k6,
# PostgreSQL client tools, a non-root user, tini, HEALTHCHECK and a linted, tested build.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
COPY probes ./probes
EXPOSE 8080
CMD ["node", "dist/main.js"]
