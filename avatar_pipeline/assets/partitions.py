"""One dynamic partition per avatar kit; the partition key is the kit id."""

import dagster as dg

KITS_PARTITION_NAME = "avatar_kits"
kit_partitions = dg.DynamicPartitionsDefinition(name=KITS_PARTITION_NAME)
