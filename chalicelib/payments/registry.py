"""Payment gateway name -> implementing class, and which gateways this deployment enables.

A gateway module is imported only when that gateway is used, so a cold start loads no
gateway code. LOBSTER_GATEWAYS (a JSON object) enables gateways with their non-secret
settings and a secret reference. The demo gateway is enabled in the local and test stages
only, and LOBSTER_GATEWAYS cannot enable it in prod.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from chalicelib.config import settings
from chalicelib.errors import LobsterError, NotFound
from chalicelib.payments.base import Gateway
from chalicelib.secrets import get_secret

CONFIG_VARIABLE = "LOBSTER_GATEWAYS"
ENTRY_KEYS = frozenset({"settings", "secret_ref"})


@dataclass(frozen=True)
class GatewaySpec:
    """The import path of a gateway's class and the features the gateway supports."""

    target: str  # "module:Class"
    local_only: bool = False
    accepts_callbacks: bool = True


GATEWAYS: dict[str, GatewaySpec] = {
    "paypal": GatewaySpec("chalicelib.payments.paypal:PayPalGateway"),
    "coinbase": GatewaySpec("chalicelib.payments.coinbase:CoinbaseGateway"),
    "stripe": GatewaySpec("chalicelib.payments.stripe_gateway:StripeGateway"),
    "demo": GatewaySpec("chalicelib.payments.demo:DemoGateway", local_only=True, accepts_callbacks=False),
}


class GatewayConfigInvalid(LobsterError):
    """LOBSTER_GATEWAYS cannot be used; the message names the entry to fix."""

    status = 500
    code = "gateway_config_invalid"


@dataclass(frozen=True)
class GatewayConfig:
    name: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    secret_ref: str | None = None


def gateway_configs() -> dict[str, GatewayConfig]:
    """Return the configuration of every enabled gateway, by name."""
    return dict(_parse_configs(os.environ.get(CONFIG_VARIABLE, ""), settings().is_local))


def enabled_gateway_names() -> list[str]:
    return sorted(gateway_configs())


def gateway_spec(name: str) -> GatewaySpec:
    """Return the spec of the enabled gateway `name`; raise NotFound if it is not enabled."""
    if name not in gateway_configs():
        raise NotFound(
            f"payment gateway {name!r} is not enabled; enabled: {', '.join(enabled_gateway_names()) or 'none'}"
        )
    return GATEWAYS[name]


def create_gateway(name: str) -> Gateway:
    """Import and build the enabled gateway `name` with its settings and secrets."""
    spec = gateway_spec(name)
    config = gateway_configs()[name]
    module_name, class_name = spec.target.split(":")
    gateway_class: type[Gateway] = getattr(importlib.import_module(module_name), class_name)
    return gateway_class(config.settings, get_secret(config.secret_ref))


@lru_cache(maxsize=8)
def _parse_configs(text: str, is_local: bool) -> tuple[tuple[str, GatewayConfig], ...]:
    """Parse LOBSTER_GATEWAYS once per distinct value; raise GatewayConfigInvalid naming the problem."""
    configs = {"demo": GatewayConfig("demo")} if is_local else {}
    if not text.strip():
        return tuple(configs.items())

    try:
        document = json.loads(text)
    except ValueError as error:
        raise GatewayConfigInvalid(f"{CONFIG_VARIABLE} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise GatewayConfigInvalid(
            f'{CONFIG_VARIABLE} must be a JSON object such as {{"stripe": {{"settings": {{}}}}}}'
        )

    for name, entry in document.items():
        configs[name] = _parse_entry(name, entry, is_local)
    return tuple(configs.items())


def _parse_entry(name: str, entry: Any, is_local: bool) -> GatewayConfig:
    spec = GATEWAYS.get(name)
    if spec is None:
        raise GatewayConfigInvalid(
            f"{CONFIG_VARIABLE} names unknown gateway {name!r}; expected one of {', '.join(sorted(GATEWAYS))}"
        )
    if spec.local_only and not is_local:
        raise GatewayConfigInvalid(
            f"the {name} gateway runs only in the local and test stages; remove it from {CONFIG_VARIABLE}"
        )
    if not isinstance(entry, dict):
        raise GatewayConfigInvalid(f'{CONFIG_VARIABLE}[{name!r}] must be an object with "settings" and "secret_ref"')

    unknown = sorted(set(entry) - ENTRY_KEYS)
    if unknown:
        raise GatewayConfigInvalid(
            f"{CONFIG_VARIABLE}[{name!r}] has unknown keys {unknown}; expected settings and secret_ref"
        )
    gateway_settings = entry.get("settings", {})
    if not isinstance(gateway_settings, dict):
        raise GatewayConfigInvalid(f"{CONFIG_VARIABLE}[{name!r}].settings must be an object")
    secret_ref = entry.get("secret_ref")
    if secret_ref is not None and not isinstance(secret_ref, str):
        raise GatewayConfigInvalid(
            f'{CONFIG_VARIABLE}[{name!r}].secret_ref must be a string such as "ssm:/lobster/prod/{name}"'
        )
    return GatewayConfig(name, gateway_settings, secret_ref or None)
