"""One router gathering every route file."""

from fastapi import APIRouter

from avatar_pipeline.serving.routes import assets, characters, files, kits, review, scenes
from avatar_pipeline.serving.routes import episodes as episode_routes

api_router = APIRouter()
api_router.include_router(scenes.router)
api_router.include_router(episode_routes.router)
api_router.include_router(kits.router)
api_router.include_router(assets.router)
api_router.include_router(characters.router)
api_router.include_router(files.router)
api_router.include_router(review.router)

__all__ = ["api_router"]
