from avatar_pipeline_tests.pipeline_fixtures import instance, pipeline  # noqa: F401
from avatar_pipeline_tests.test_consistency.conftest import (  # noqa: F401
    tiny_clip_checkpoint,
    tiny_clip_config,
)
