"""Pure: what GPU nodes, licences and the rest of an environment cost per month, and what is paid but
idle. No Pulumi import. Prices and their sources: catalog.py (GPU instances), prices.py (NAT, system
nodes, storage, licence, setup hours), eks.py (control plane by version and date)."""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from typing import Optional

from . import eks, prices
from .catalog import HOURS_PER_MONTH


@dataclass(frozen=True)
class MonthlyCost:
    nodes: int
    hourly_rate_usd: float
    rate_source: str
    """on-demand, spot (configured), capacity-block (configured)."""
    gpu_compute_usd: float
    license_usd: float
    licensed_gpus: int

    @property
    def total_usd(self) -> float:
        return self.gpu_compute_usd + self.license_usd

    @property
    def first_year_usd(self) -> float:
        return self.total_usd * 12


def monthly_cost(nodes: int, hourly_rate_usd: float, licensed_gpus: int = 0,
                 license_usd_per_gpu_month: float = 0.0, rate_source: str = "on-demand") -> MonthlyCost:
    """nodes x hourly rate x 730 h, plus a per-GPU monthly software licence (NIM)."""
    return MonthlyCost(
        nodes=nodes,
        hourly_rate_usd=hourly_rate_usd,
        rate_source=rate_source,
        gpu_compute_usd=nodes * hourly_rate_usd * HOURS_PER_MONTH,
        license_usd=licensed_gpus * license_usd_per_gpu_month,
        licensed_gpus=licensed_gpus,
    )


# ---- GPUs paid, used and idle ----------------------------------------------------------------

@dataclass(frozen=True)
class GpuUse:
    gpus_paid: int
    gpus_used: int
    idle_gpus: int
    idle_usd_per_month: float
    """The idle GPUs' share of the node price."""


def gpu_use(nodes: int, gpus_per_node: int, replicas: int, gpus_per_replica: int, node_usd_per_hour: float) -> GpuUse:
    """GPUs the serving nodes carry vs the GPUs the replicas request; idle GPUs priced at the node's $/GPU-h."""
    paid = nodes * gpus_per_node
    used = min(replicas * gpus_per_replica, paid)
    idle = paid - used
    return GpuUse(paid, used, idle, idle * node_usd_per_hour / gpus_per_node * HOURS_PER_MONTH)


@dataclass(frozen=True)
class PackedAlternative:
    """The same replicas on as few nodes as hold them (soft spread), or the same nodes filled with replicas."""

    nodes: int
    usd_per_month: float
    saves_usd_per_month: float
    replicas_per_node: int
    fill_replicas: int
    """Replicas the current nodes could carry at `replicas_per_node` (the paid GPUs all in use)."""


def packed_alternative(replicas: int, gpus_per_replica: int, gpus_per_node: int, nodes: int,
                       node_usd_per_hour: float) -> Optional[PackedAlternative]:
    """None when no node could carry a second replica (nothing to pack)."""
    per_node = gpus_per_node // gpus_per_replica
    if per_node < 2 or replicas < 1:
        return None
    packed = math.ceil(replicas / per_node)
    return PackedAlternative(packed, packed * node_usd_per_hour * HOURS_PER_MONTH,
                             max(nodes - packed, 0) * node_usd_per_hour * HOURS_PER_MONTH, per_node, nodes * per_node)


# ---- the rest of the environment -------------------------------------------------------------

@dataclass(frozen=True)
class FixedCost:
    name: str
    usd_per_month: float
    detail: str
    """The rate, the quantity and the date of the price."""


def fixed_costs(*, create_cluster: bool, version: str, on: _dt.date, nat_gateways: int, system_instance_type: str,
                system_nodes: int, gpu_nodes: int, gpu_disk_gib: int, model_store_gb: float,
                support_type: str = "EXTENDED") -> list[FixedCost]:
    """The monthly costs an environment pays besides its serving GPUs and licences. An adopted cluster's
    control plane, NAT gateways and system nodes belong to whoever created it: not priced here."""
    h = HOURS_PER_MONTH
    lines: list[FixedCost] = []
    if create_cluster:
        rate = eks.control_plane_usd_per_hour(version, on, support_type)
        status = eks.support_status(version, on)
        v = eks.VERSIONS.get(version)
        when = ("not in servingstack's version table" if v is None else
                f"standard support until {v.end_of_standard_support}" if status == "standard" else
                f"extended support since {v.end_of_standard_support}" if status == "extended" else
                f"past extended support since {v.end_of_extended_support}")
        lines.append(FixedCost("EKS control plane", rate * h, f"${rate:.2f}/h, Kubernetes {version} {when} "
                                                             f"(on {on}; upgrade policy {support_type})"))
        nat = prices.NAT_GATEWAY_USD_PER_HOUR + prices.PUBLIC_IPV4_USD_PER_HOUR
        lines.append(FixedCost("NAT gateways", nat_gateways * nat * h,
                               f"{nat_gateways} x ${nat:.3f}/h incl. its public IPv4 ({prices.NAT_PRICES_AS_OF}; "
                               "plus $0.045/GB processed, not priced)"))
        rate = prices.SYSTEM_INSTANCE_USD_PER_HOUR.get(system_instance_type)
        disk = system_nodes * prices.SYSTEM_NODE_DISK_GIB * prices.GP3_USD_PER_GB_MONTH
        if rate is None:
            lines.append(FixedCost("System nodes", disk, f"{system_nodes} x {system_instance_type}: no price in "
                                                         "servingstack's table (root volumes only)"))
        else:
            lines.append(FixedCost("System nodes", system_nodes * rate * h + disk,
                                   f"{system_nodes} x {system_instance_type} ${rate:.4f}/h "
                                   f"({prices.SYSTEM_PRICES_AS_OF}) + {prices.SYSTEM_NODE_DISK_GIB} GiB gp3 each"))
    lines.append(FixedCost("GPU node volumes", gpu_nodes * gpu_disk_gib * prices.GP3_USD_PER_GB_MONTH,
                           f"{gpu_nodes} x {gpu_disk_gib} GiB gp3 at ${prices.GP3_USD_PER_GB_MONTH}/GB-month "
                           f"({prices.STORAGE_PRICES_AS_OF})"))
    lines.append(FixedCost("Model storage", model_store_gb * prices.S3_STANDARD_USD_PER_GB_MONTH,
                           f"{model_store_gb:,.0f} GB of weights in S3 Standard at "
                           f"${prices.S3_STANDARD_USD_PER_GB_MONTH}/GB-month ({prices.STORAGE_PRICES_AS_OF})"
                           if model_store_gb else "no weights in the model store (they come from Hugging Face)"))
    return lines


def first_year_usd(monthly_usd: float, setup_hours: float, engineering_usd_per_hour: float) -> float:
    """12 months of the environment plus its setup engineering hours at the configured rate."""
    return 12 * monthly_usd + setup_hours * engineering_usd_per_hour
