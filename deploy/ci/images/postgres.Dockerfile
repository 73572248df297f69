# CI only (no registry is reachable there): PostgreSQL 15 from Debian on the debootstrap base, with an
# entrypoint that keeps the official postgres image's contract that docker-compose.yml relies on
# (POSTGRES_USER, POSTGRES_PASSWORD, /docker-entrypoint-initdb.d/*.sh on the first start).
ARG BASE=marksman-ci/base:bookworm
FROM ${BASE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null \
    && rm -rf /var/lib/apt/lists/* /var/lib/postgresql/15 /etc/postgresql/15/main \
    && install -d -o postgres -g postgres /var/lib/postgresql/data /docker-entrypoint-initdb.d
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PGDATA=/var/lib/postgresql/data PATH=/usr/lib/postgresql/15/bin:${PATH}
USER postgres
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]
