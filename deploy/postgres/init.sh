#!/bin/sh
# Run once by the postgres image on a new data directory: a role and a schema per service, each role owning
# only its schema. Passwords come from IOMKI_<SERVICE>_DB_PASSWORD (see docker-compose.yml).
set -eu
for service in permits reports incidents notifier supervision; do
    password=$(printenv "IOMKI_$(echo "$service" | tr a-z A-Z)_DB_PASSWORD")
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
         -v role="iomki_$service" -v schema="$service" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE SCHEMA :"schema" AUTHORIZATION :"role";
GRANT CONNECT ON DATABASE :"DBNAME" TO :"role";
SQL
done
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -c 'REVOKE CREATE ON SCHEMA public FROM PUBLIC'
