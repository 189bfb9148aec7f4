"""Lobster's Chalice application: wiring only. Routes live in chalicelib.api blueprints,
billing in chalicelib.billing; this module connects them to API Gateway, EventBridge
schedules and the SQS billing queue.
"""

import os

from chalice import Chalice, Cron

from chalicelib.api import account, auth, catalog, payments, system, vms
from chalicelib.billing import jobs

app = Chalice(app_name="lobster")
app.experimental_feature_flags.update(["BLUEPRINTS"])

for blueprint_module in (system, auth, account, catalog, payments, vms):
    app.register_blueprint(blueprint_module.blueprint)

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


@app.on_sqs_message(queue=BILLING_QUEUE, batch_size=1, name="billing_worker")
def billing_worker(event):
    return [jobs.run_billing_shard(record.body) for record in event]
