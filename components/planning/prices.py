"""Pure data: what an environment pays besides its GPU nodes, and the NIM licence, with sources and dates.

Nothing here imports Pulumi. us-east-1 list prices (us-west-2 charges the same for every line here);
other regions differ by a few percent. The EKS control-plane rate depends on the cluster's version and
the date: it lives with the EKS version table in eks.py.
"""

from __future__ import annotations

#: NVIDIA AI Enterprise (required for production NIM): $4,500 per GPU per year list price, NVIDIA Q3
#: FY2024 earnings call (2023-11-21) and the NVIDIA AI Enterprise licensing guide; cloud marketplaces
#: bill about $1 per GPU-hour instead (performance-facts.md §6 [S27]). The source document's cost table
#: reads "~$4,500 (NVAIE)" as a monthly line for 2 GPUs, i.e. $2,250 per GPU-month: 6x the list price.
NIM_LICENSE_USD_PER_GPU_YEAR = 4500.0
NIM_LICENSE_SOURCE = "NVIDIA AI Enterprise list price, $4,500 per GPU-year (NVIDIA Q3 FY2024 earnings call, 2023-11-21)"
NIM_LICENSE_MARKETPLACE_USD_PER_GPU_HOUR = 1.0
SOURCE_DOCUMENT_NIM_LICENSE_USD_PER_MONTH_2_GPUS = 4500.0

#: NAT gateway: $0.045 per gateway-hour plus $0.045 per GB processed (us-east-1; AWS VPC pricing as
#: summarized 2026-02/03 by cloudburn.io and basavytix.com), and its Elastic IP at the public-IPv4
#: rate of $0.005/h. The per-GB charge depends on traffic and is not priced (weights come through the
#: S3 gateway endpoint once issue 11 adds it).
NAT_GATEWAY_USD_PER_HOUR = 0.045
PUBLIC_IPV4_USD_PER_HOUR = 0.005
NAT_PRICES_AS_OF = "2026-03"

#: On-demand Linux $/h of the CPU instance types a system node pool typically uses (us-east-1,
#: instances.vantage.sh data of 2026-01-21, like the GPU prices in catalog.py).
SYSTEM_INSTANCE_USD_PER_HOUR = {
    "m6i.large": 0.096, "m6i.xlarge": 0.192, "m6i.2xlarge": 0.384,
    "m5.large": 0.096, "m5.xlarge": 0.192, "m7i.large": 0.1008, "m7i.xlarge": 0.2016,
    "t3.medium": 0.0416, "t3.large": 0.0832, "c6i.large": 0.085,
}
SYSTEM_PRICES_AS_OF = "2026-01-21"
#: EKS managed node groups default to a 20 GiB root volume (serving-facts.md §1: `diskSize` default 20).
SYSTEM_NODE_DISK_GIB = 20

#: EBS gp3 $0.08 per GB-month (baseline 3,000 IOPS / 125 MB/s included); S3 Standard $0.023 per
#: GB-month for the first 50 TB (AWS pricing pages as summarized 2025-2026 by vantage.sh and devnotes.tech).
GP3_USD_PER_GB_MONTH = 0.08
S3_STANDARD_USD_PER_GB_MONTH = 0.023
STORAGE_PRICES_AS_OF = "2026-01"

#: Setup engineering hours per stack, as the source document's cost table lists them ("40h / 60h / 4h
#: setup"). Its Year-1 totals imply $75/h for vLLM, $110/h for Triton and $0/h for NIM
#: (performance-facts.md §3); servingstack uses one configurable rate for all three instead.
SOURCE_DOCUMENT_SETUP_HOURS = {"vllm": 40.0, "triton": 60.0, "nim": 4.0}
#: A round planning figure between the source document's implied $75 and $110 per hour, not a
#: sourced market rate: set `servingstack:cost.engineeringUsdPerHour` to yours.
DEFAULT_ENGINEERING_USD_PER_HOUR = 100.0
