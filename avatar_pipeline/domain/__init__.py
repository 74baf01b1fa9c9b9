"""Kit and asset vocabulary, prompt composition and status rules. No Dagster, HTTP or SQL."""
