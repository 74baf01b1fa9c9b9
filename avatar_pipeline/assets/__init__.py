"""The Dagster asset graph: provider models -> kit images (anchors, expressions, poses) -> reports."""
