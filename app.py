"""Lobster's Chalice application: wiring only. Routes live in chalicelib.api blueprints,
billing in chalicelib.billing; this module connects them to API Gateway, EventBridge
schedules and the SQS billing queue.
"""

import importlib
import os

from chalice import Chalice, Cron

from chalicelib.billing import jobs
from chalicelib.log import publish_metrics, start_tracing
from chalicelib.payments import jobs as payment_jobs

# Route modules of chalicelib.api, each with a `blueprint`.
ROUTE_MODULES = (
    "system", "auth", "account", "apikeys", "catalog", "payments", "vms", "webhooks", "billing_views", "images",
    "sshkeys", "support", "admin", "admin_catalog", "panel",
)
# Event functions (schedules, the queue worker) answer no HTTP request: .chalice/config.json
# sets LOBSTER_ROUTES=off for them, so their cold start skips importing the API.
ROUTES_ENABLED = os.environ.get("LOBSTER_ROUTES", "on") != "off"

start_tracing()
app = Chalice(app_name="lobster")
app.experimental_feature_flags.update(["BLUEPRINTS"])
# Every handler, HTTP or event, writes the metrics it added when it returns.
app.register_middleware(publish_metrics, "all")

if ROUTES_ENABLED:
    for module_name in ROUTE_MODULES:
        app.register_blueprint(importlib.import_module(f"chalicelib.api.{module_name}").blueprint)

BILLING_QUEUE = os.environ.get("LOBSTER_BILLING_QUEUE_NAME", "lobster-billing")


@app.schedule(Cron(jobs.HOURLY_SCHEDULE_MINUTE, "*", "*", "*", "?", "*"), name="hourly_billing")
def hourly_billing(event):
    result = jobs.run_hourly_billing(event.time)
    jobs.log_run("hourly_billing_planned", result)
    return result


@app.schedule(Cron(*jobs.ROLLOVER_SCHEDULE, "*", "?", "*"), name="monthly_rollover")
def monthly_rollover(event):
    result = jobs.run_monthly_rollover(event.time)
    jobs.log_run("monthly_rollover_done", result)
    return result


@app.schedule(Cron(*payment_jobs.RECONCILIATION_SCHEDULE, "*", "*", "?", "*"), name="payment_reconciliation")
def payment_reconciliation(event):
    result = payment_jobs.run_payment_reconciliation(event.time)
    jobs.log_run("payment_reconciliation_finished", result)
    return result


@app.on_sqs_message(queue=BILLING_QUEUE, batch_size=1, name="billing_worker")
def billing_worker(event):
    return [jobs.run_billing_shard(record.body) for record in event]
