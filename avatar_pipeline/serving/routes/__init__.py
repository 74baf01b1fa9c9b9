"""One router gathering every route file."""

from fastapi import APIRouter

from avatar_pipeline.serving.routes import assets, characters, files, kits, review, scenes

api_router = APIRouter()
api_router.include_router(scenes.router)
api_router.include_router(kits.router)
api_router.include_router(assets.router)
api_router.include_router(characters.router)
api_router.include_router(files.router)
api_router.include_router(review.router)

__all__ = ["api_router"]
