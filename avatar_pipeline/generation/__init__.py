"""Kit generation: the plain-Python core that produces one kit's slots (no Dagster, no HTTP).

The Dagster assets, the CLI and the API all call :class:`KitGenerator`.
"""
