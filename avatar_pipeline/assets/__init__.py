"""The Dagster asset graph: provider models -> kit images -> consistency reports."""
