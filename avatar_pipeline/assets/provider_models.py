"""The provider's models as observable source assets: data version = the model version.

Kit images depend on the model that makes them, so when a provider upgrades a model Dagster's
own staleness marks the affected kit images ("upstream data version changed").
"""

import asyncio

import dagster as dg

from avatar_pipeline.assets import groups
from avatar_pipeline.resources.image_service import ImageServiceResource

GENERATE_MODEL = dg.AssetKey(["provider", "generate_model"])
EDIT_MODEL = dg.AssetKey(["provider", "edit_model"])
MULTI_REFERENCE_MODEL = dg.AssetKey(["provider", "multi_reference_model"])

# (operation, number of references) each role stands for
MODEL_ROLES: dict[dg.AssetKey, tuple[str, int]] = {
    GENERATE_MODEL: ("generate", 0),
    EDIT_MODEL: ("edit", 1),
    MULTI_REFERENCE_MODEL: ("edit", 2),
}


def current_model_versions(
    image_service: ImageServiceResource,
) -> dict[dg.AssetKey, tuple[str, str]]:
    """Role -> (model id, version) the provider would use now, after looking up the latest."""
    provider = image_service.get_service().provider
    latest = asyncio.run(provider.latest_model_versions())
    result = {}
    for key, (operation, refs) in MODEL_ROLES.items():
        model, version = provider.model_for(operation, refs)
        result[key] = (model, latest.get(model, version) if version in ("", "latest") else version)
    return result


@dg.multi_observable_source_asset(
    specs=[
        dg.AssetSpec(
            key,
            group_name=groups.PROVIDER,
            description=f"Provider model for {role[0]} with {role[1]} reference(s)",
        )
        for key, role in MODEL_ROLES.items()
    ],
)
def provider_models(image_service: ImageServiceResource):
    """Observe which model version the provider serves for each role."""
    for key, (model, version) in current_model_versions(image_service).items():
        yield dg.ObserveResult(
            asset_key=key,
            data_version=dg.DataVersion(f"{model}@{version}"),
            metadata={"model": model, "version": version},
        )
