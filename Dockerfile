# syntax=docker/dockerfile:1
# djinn-scheduler container image.
#
#   docker build -t djinn-scheduler .                  (FROM debian:bookworm-slim)
#   buildah build --isolation chroot --pull=never \
#       --build-arg BASE_IMAGE=localhost/bookworm-minbase:latest -t djinn-scheduler .
#
# Both stages start from BASE_IMAGE (Debian 12 bookworm), so CI can point it at a locally
# bootstrapped base when no registry is reachable (scripts/check-packaging.sh image).
# The build stage compiles and runs the unit tests; the runtime stage holds the binary and
# the runtime libraries only, runs as a numeric non-root user and needs no shell.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
ARG DEBIAN_FRONTEND=noninteractive
WORKDIR /src
# The dependency layer is cached until the list changes.
COPY dist/build-deps.txt dist/build-deps.txt
RUN apt-get update \
 && xargs -a dist/build-deps.txt apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/*
COPY CMakeLists.txt ./
COPY cmake/ cmake/
COPY src/ src/
COPY tests/ tests/
# The unit tests compare manifest decoders on the benchmark's manifests too.
COPY bench/sql/ bench/sql/
COPY bench/micro_bench.cpp bench/micro_bench.cpp
ARG CMAKE_BUILD_TYPE=RelWithDebInfo
# Only the binary and the unit tests: the integration tests need services (scripts/test.sh).
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE} -DDJINN_BUILD_TESTS=ON \
 && cmake --build build -j"$(nproc)" --target djinn-scheduler djinn_unit_tests \
 && ctest --test-dir build -L unit --output-on-failure --no-tests=error -j"$(nproc)" \
 && strip --strip-debug -o /djinn-scheduler build/djinn-scheduler \
 && /djinn-scheduler -version

FROM ${BASE_IMAGE} AS runtime
ARG DEBIAN_FRONTEND=noninteractive
# Runtime counterparts of dist/build-deps.txt (Debian bookworm package names).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates \
      libpqxx-6.4 \
      libhiredis0.14 \
      libprometheus-cpp-core1.0 \
      libprometheus-cpp-pull1.0 \
      libyaml-cpp0.7 \
      libyaml-0-2 \
      libspdlog1.10 \
      libfmt9 \
      libssl3 \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && mkdir -p /etc/djinn
COPY --from=build /djinn-scheduler /usr/local/bin/djinn-scheduler
COPY dist/scheduler.yaml /etc/djinn/scheduler.yaml

ARG BASE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="djinn-scheduler" \
      org.opencontainers.image.description="Djinn CI scheduler: turns due cron jobs into queued builds (leader-elected, Prometheus metrics)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="https://github.com/djinn-ci/djinn" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

# Numeric, so Kubernetes can verify runAsNonRoot without a passwd entry.
USER 65532:65532
EXPOSE 8080
# Exec form: no shell is involved. Arguments replace CMD, e.g. `-version`, `-check-config`.
ENTRYPOINT ["/usr/local/bin/djinn-scheduler"]
CMD ["-config", "/etc/djinn/scheduler.yaml"]
