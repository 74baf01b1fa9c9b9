from avatar_pipeline_tests.pipeline_fixtures import instance, pipeline  # noqa: F401
