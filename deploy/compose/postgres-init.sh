#!/bin/sh
# Creates one database per service (MARKSMAN_DATABASES, set by docker-compose.yml) on the first start of
# the PostgreSQL volume, as the official image runs /docker-entrypoint-initdb.d/*.sh. Idempotent: run it
# again (docker-compose exec postgres sh /docker-entrypoint-initdb.d/10-marksman-databases.sh) after
# adding a service to an existing volume.
set -eu
for database in ${MARKSMAN_DATABASES}; do
    exists=$(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '${database}'")
    if [ "$exists" != "1" ]; then
        psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -c "CREATE DATABASE \"${database}\""
        echo "created database ${database}"
    fi
done
