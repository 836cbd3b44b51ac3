# abidance container image: one image, all four programs; the command picks
# the service (default abidance-query).
#
#   ../shared/tools/build-image                 podman, offline (README.md, Deployment)
#   docker build -t abidance:dev .              anywhere with a registry
#   docker run --rm abidance:dev abidance-query --help
#
# Stage 1 compiles on Debian 12 with the same install script the README uses
# (scripts/install-deps.sh --build); stage 2 is debian:bookworm-slim with only
# the shared libraries the binaries load (scripts/install-deps.sh --runtime),
# running as the unprivileged user abidance (uid 10001).

ARG DEBIAN=docker.io/library/debian:bookworm

# ---------------------------------------------------------------- build
FROM ${DEBIAN} AS build
# Release builds treat warnings as errors, like CI; --build-arg
# ABIDANCE_WERROR=OFF builds anyway when a new compiler warns.
ARG ABIDANCE_WERROR=ON
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN ./scripts/install-deps.sh --build && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake --preset release -DABIDANCE_TESTS=OFF -DABIDANCE_WERROR="${ABIDANCE_WERROR}" \
    && cmake --build --preset release -j"$(nproc)" \
         --target abidance-query abidance-ingest abidance-sim abidance-cred \
    && mkdir -p /out \
    && for s in query ingest sim cred; do \
         install -m 0755 -s "build/release/services/$s/abidance-$s" /out/; \
       done \
    && install -m 0755 deploy/docker/healthcheck.sh /out/abidance-healthcheck

# ---------------------------------------------------------------- runtime
FROM ${DEBIAN}-slim AS runtime
COPY scripts/install-deps.sh /tmp/install-deps.sh
RUN /tmp/install-deps.sh --runtime \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /tmp/install-deps.sh \
    && groupadd --gid 10001 abidance \
    && useradd --uid 10001 --gid abidance --home-dir /var/lib/abidance \
         --no-create-home --shell /usr/sbin/nologin abidance \
    && install -d -o abidance -g abidance -m 0750 /var/lib/abidance
COPY --from=build /out/ /usr/local/bin/

# Inside a container the services listen on every interface of the
# container's own network; publish ports on 127.0.0.1 only (docker-compose.yml
# does). With --network host, set the addresses to 127.0.0.1 explicitly.
# /var/lib/abidance holds the bus socket: query and ingest share it as a volume.
ENV ABIDANCE_HTTP_ADDR=0.0.0.0:8080 \
    ABIDANCE_WS_ADDR=0.0.0.0:8081 \
    ABIDANCE_INGEST_HEALTH_ADDR=0.0.0.0:8082 \
    ABIDANCE_SIM_LISTEN=0.0.0.0:9443 \
    ABIDANCE_DATA_DIR=/var/lib/abidance \
    ABIDANCE_BUS=/var/lib/abidance/bus.sock

USER 10001:10001
WORKDIR /var/lib/abidance
EXPOSE 8080 8081 8082 9443
STOPSIGNAL SIGTERM
# Probes whichever service runs as PID 1 (query /healthz, ingest /healthz on
# its health port, sim /api/v3/ping). podman keeps HEALTHCHECK only in the
# docker image format: BUILDAH_FORMAT=docker (README.md, Deployment).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["abidance-healthcheck"]
CMD ["abidance-query"]
