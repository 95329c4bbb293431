#!/usr/bin/env bash
# Creates the buckets lakewriter's tests use. LocalStack runs this once S3 is ready (Docker);
# scripts/localstack runs it too, with ENDPOINT set, when LocalStack runs from PyPI.
set -euo pipefail
endpoint="${ENDPOINT:-http://localhost:4566}"
for bucket in ${LAKEWRITER_TEST_BUCKETS:-lakewriter-test}; do
    # PUT on an existing bucket of ours answers 200 in us-east-1, so this is safe to rerun.
    curl -fsS -X PUT "$endpoint/$bucket" -o /dev/null
done
