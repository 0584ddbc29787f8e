#!/bin/sh
# One-shot (the `influxdb-init` service): map the database name the Grafana boards query with InfluxQL
# onto the bucket the server writes (a DBRP mapping). Idempotent: does nothing when the mapping exists.
# The influx CLI reads INFLUX_HOST, INFLUX_TOKEN and INFLUX_ORG from the environment.
set -eu
db="${FLOORWATCH_INFLUX_DATABASE:-floorwatch}"
bucket="${FLOORWATCH_INFLUX_BUCKET:-floorwatch}"
if influx v1 dbrp list --db "$db" --hide-headers | grep -q .; then
    echo "DBRP mapping for database $db exists"
    exit 0
fi
bucket_id="$(influx bucket list --name "$bucket" --hide-headers | cut -f1)"
if [ -z "$bucket_id" ]; then
    echo "bucket $bucket not found" >&2
    exit 1
fi
influx v1 dbrp create --db "$db" --rp autogen --bucket-id "$bucket_id" --default
echo "mapped database $db (rp autogen) to bucket $bucket ($bucket_id)"
