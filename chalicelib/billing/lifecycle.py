"""The credit life-cycle: low-credit notices, suspension, termination, and lifting
automatic suspensions when credit returns. Each step happens once per account state.
"""

from __future__ import annotations

from pynamodb.exceptions import UpdateError

from chalicelib.log import logger
from chalicelib.models.accounts import Account
from chalicelib.models.vms import Vm


def on_credit(account_id: str) -> list[str]:
    """Lift automatic suspensions if the balance is now positive; admin suspensions stay.

    Returns the ids of the VMs unsuspended by this call.
    """
    account = Account.get(account_id, consistent_read=True)
    if account.balance_micros <= 0:
        return []

    lifted = []
    for vm in Vm.query(account_id, filter_condition=Vm.suspended == "auto"):
        try:
            vm.update(actions=[Vm.suspended.set("no")], condition=Vm.suspended == "auto")
        except UpdateError:
            continue
        lifted.append(vm.vm_id)
        logger.info("vm_unsuspended", extra={"account_id": account_id, "vm_id": vm.vm_id})
    if lifted:
        account.update(actions=[Account.low_credit_notices.set(0)])
    return lifted
