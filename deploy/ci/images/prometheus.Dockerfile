# CI only: Debian's Prometheus on the debootstrap base, started like the official image (the binary as
# entrypoint, the compose file's flags as arguments, data in /prometheus, user nobody).
ARG BASE=marksman-ci/base:bookworm
FROM ${BASE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus wget >/dev/null \
    && rm -rf /var/lib/apt/lists/* \
    && install -d -o nobody -g nogroup /prometheus
USER nobody
WORKDIR /prometheus
ENTRYPOINT ["/usr/bin/prometheus"]
