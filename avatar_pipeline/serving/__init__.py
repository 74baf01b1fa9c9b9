"""The scene-serving API (FastAPI): user scenes, kit administration, signed file reads.

Built with :func:`avatar_pipeline.serving.main.create_app` from the same ``Settings`` the
Dagster side uses, over the same catalog, object store and image service.
"""
