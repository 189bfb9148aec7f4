"""Backend type -> implementing class, imported only when a region uses it, so a cold
start loads no provider code.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from chalicelib.backends.base import Backend
from chalicelib.errors import InvalidRequest

BACKEND_CLASSES: dict[str, str] = {
    "demo": "chalicelib.backends.demo:DemoBackend",
    "openstack": "chalicelib.backends.openstack:OpenStackBackend",
    "solusvm": "chalicelib.backends.solusvm:SolusVmBackend",
    "cloudstack": "chalicelib.backends.cloudstack:CloudStackBackend",
    "lunanode": "chalicelib.backends.lunanode:LunaNodeBackend",
    "digitalocean": "chalicelib.backends.digitalocean:DigitalOceanBackend",
    "linode": "chalicelib.backends.linode:LinodeBackend",
    "vultr": "chalicelib.backends.vultr:VultrBackend",
    "libcloud": "chalicelib.backends.libcloud_driver:LibcloudBackend",
}


def backend_class(backend_type: str) -> type[Backend]:
    """Import and return the class for `backend_type`."""
    target = BACKEND_CLASSES.get(backend_type)
    if target is None:
        known = ", ".join(sorted(BACKEND_CLASSES))
        raise InvalidRequest(f"unknown backend type {backend_type!r}; expected one of {known}", field="backend")

    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def create_backend(backend_type: str, region_id: str, settings: Mapping[str, Any], secrets: Mapping[str, str]) -> Backend:
    return backend_class(backend_type)(region_id, settings, secrets)
