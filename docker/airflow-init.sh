#!/usr/bin/env bash
# One-off set-up of the compose deployment (the airflow-init service, run as root):
# the metadata database, the UI/API user's password, the tableau pool, and the demo ledger the
# demo connections point at. Safe to run again: every step replaces or keeps what is there.
set -euo pipefail

AIRFLOW_UID="${AIRFLOW_UID:-50000}"
DEMO_DIR="${FRONTIER_DEMO_DIR:-/opt/airflow/demo}"

mkdir -p /opt/airflow/{logs,dags,plugins,config} "${DEMO_DIR}" "${FRONTIER_STAGING_ROOT}"

# SimpleAuthManager reads the passwords of AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS from this file.
passwords_file="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE}"
if [[ ! -s "${passwords_file}" ]]; then
    python -c 'import json, sys; print(json.dumps({sys.argv[1]: sys.argv[2]}))' \
        "${_AIRFLOW_WWW_USER_USERNAME:-admin}" "${_AIRFLOW_WWW_USER_PASSWORD:-admin}" > "${passwords_file}"
fi

echo "Building the demo ledger in ${DEMO_DIR}"
python -c 'import sys; from frontier_provider.demo.ledger import build_demo_ledger; build_demo_ledger(sys.argv[1])' \
    "${DEMO_DIR}"

/entrypoint airflow db migrate
/entrypoint airflow pools set tableau 1 "Tableau: a personal access token holds one session"
/entrypoint airflow version

chown -R "${AIRFLOW_UID}:0" /opt/airflow/{logs,config} "${DEMO_DIR}" "${FRONTIER_STAGING_ROOT}"
