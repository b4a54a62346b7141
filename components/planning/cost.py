"""Pure: what GPU nodes and licences cost per month. No Pulumi import."""

from __future__ import annotations

from dataclasses import dataclass

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
