"""Materialises partitions of the Dagster example's asset (the file given first), one after
the other in one ephemeral Dagster instance, and prints one JSON line per partition: whether
the run succeeded, the materialization's metadata, and for a failed run the failure's
metadata and whether Dagster scheduled a retry."""

import importlib.util
import json
import sys

import dagster as dg

spec = importlib.util.spec_from_file_location("lakewriter_assets", sys.argv[1])
assets = importlib.util.module_from_spec(spec)
spec.loader.exec_module(assets)
instance = dg.DagsterInstance.ephemeral()
for day in sys.argv[2:]:
    result = dg.materialize([assets.sales], partition_key=day, instance=instance, raise_on_error=False)
    line = {"day": day, "success": result.success, "metadata": {}, "failure": None}
    if result.success:
        materialized = result.asset_materializations_for_node("sales")[0]
        line["metadata"] = {key: value.value for key, value in materialized.metadata.items()}
    else:
        failure = result.get_step_failure_events()[0].event_specific_data.user_failure_data
        line["failure"] = {
            "description": failure.description,
            "exit_code": failure.metadata["exit_code"].value,
            "retried": any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events),
        }
    print(json.dumps(line, default=str))
