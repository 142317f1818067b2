# attune on the CPU: Debian 12 with the same install steps as scripts/install-deps.sh.
#   docker build -t attune .
#   docker run -p 50051:50051 -p 8080:8080 -v attune-data:/data attune
# The entrypoint is attuned alone and CMD holds its default flags, so arguments after the image
# name (and docker-compose's `command`, Kubernetes' `args`) replace all of CMD: give every flag
# you want, e.g. `docker run ... attune --listen 0.0.0.0:50051 --data-dir /data --devices cpu`.
FROM debian:12 AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN bash scripts/install-deps.sh
COPY . .
RUN bash scripts/build.sh -DATTUNE_BUILD_TESTS=OFF

FROM debian:12
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libtorch1.13 libopenblas0-openmp libgrpc++1.51 libprotobuf32 libsqlite3-0 \
      libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libyaml-cpp0.7 libpcre2-8-0 libutf8proc2 \
      libssl3 libabsl20220623 libcivetweb1 libcpp-httplib0.11 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/bin/ /usr/local/bin/
VOLUME /data
EXPOSE 50051 8080
ENTRYPOINT ["attuned"]
# --insecure: a container's port is reached through what publishes it; on a shared network use
# --auth-tokens, --tls-cert and --tls-key instead.
CMD ["--listen", "0.0.0.0:50051", "--http", "0.0.0.0:8080", "--data-dir", "/data", "--data-roots", "/data", "--insecure"]
