"""Seed a local deployment with a demo region, three plans and two public images.

Safe to run again: existing items are overwritten with the same values.
"""

from __future__ import annotations

from chalicelib.catalog import invalidate
from chalicelib.clock import iso, now
from chalicelib.models.catalog import KIND_IMAGE, KIND_PLAN, KIND_REGION, CatalogItem
from chalicelib.money import parse_micros

DEMO_REGION = "demo"

# Hourly prices in the range hosting customers know for 1, 2 and 4 GB VMs.
DEMO_PLANS = (
    ("s1", "Small 1 GB", 1024, 1, 25, 1000, "0.0075", "demo-1"),
    ("m2", "Medium 2 GB", 2048, 1, 50, 2000, "0.015", "demo-2"),
    ("l4", "Large 4 GB", 4096, 2, 80, 4000, "0.03", "demo-4"),
)
DEMO_IMAGES = (
    ("debian-12", "Debian 12", "debian-12-x64"),
    ("ubuntu-24.04", "Ubuntu 24.04 LTS", "ubuntu-24.04-x64"),
)
PRICES_EFFECTIVE_FROM = "2020-01-01T00:00:00Z"


def seed_demo() -> None:
    CatalogItem(KIND_REGION, DEMO_REGION, name="Demo region (local)", backend="demo", settings={}).save()

    for plan_id, name, ram_mb, vcpus, disk_gb, bandwidth_gib, price, backend_id in DEMO_PLANS:
        CatalogItem(
            KIND_PLAN,
            plan_id,
            name=name,
            ram_mb=ram_mb,
            vcpus=vcpus,
            disk_gb=disk_gb,
            bandwidth_gib=bandwidth_gib,
            prices=[[PRICES_EFFECTIVE_FROM, parse_micros(price)]],
            region_ids={DEMO_REGION: backend_id},
        ).save()

    for image_id, name, backend_id in DEMO_IMAGES:
        CatalogItem(KIND_IMAGE, image_id, name=name, region=DEMO_REGION, backend_id=backend_id).save()
    invalidate()


if __name__ == "__main__":
    seed_demo()
    print(f"seeded region {DEMO_REGION!r}, {len(DEMO_PLANS)} plans and {len(DEMO_IMAGES)} images at {iso(now())}")
