"""Replicate provider: FLUX.1 Kontext Pro and FLUX 2 Pro for edit(), FLUX 1.1 Pro or Imagen 4 for
generate(), through the official ``replicate`` client (async API).

Models: ``edit()`` with one reference runs ``edit_model`` (FLUX.1 Kontext Pro), with 2..8
references ``multi_reference_model`` (FLUX 2 Pro); ``generate()`` runs ``generate_model`` (FLUX
1.1 Pro), or ``google_model`` (Imagen 4) when ``use_google_for_generate``. A model listed in
``pinned_versions`` runs at that version (``POST /v1/predictions`` with ``version``), any other
through its model endpoint (``POST /v1/models/{owner}/{name}/predictions``), i.e. at its latest
version. Official models cannot be pinned and their predictions answer ``"version": "hidden"``,
so the version recorded (provenance and request fingerprint) is the pinned one, else the
``latest_version.id`` of ``GET /v1/models/{owner}/{name}`` looked up for that call (cached per
process for ``version_ttl_s``), else a real id a community model's prediction reports: never
"hidden". An upgrade published between the lookup and the create is recorded under the version
looked up (Replicate gives no way to tell); the next lookup sees the new one.

The inputs each model gets, the edit_strength mapping and the output checks are in
``replicate_models.py``.

Failed predictions: a prediction that ``failed`` for a transient reason (FLUX 2 Pro's
``KeyError: 'sample'``, nano-banana's failure with no output and no error, a crash), timed out, or
returned an unusable output is created again, at most ``max_prediction_attempts`` times in all:
with the same seed first, then, when the same seed failed twice, with a new seed derived from it
(recorded in ``extra['prediction_retries']`` and as the result's ``seed``). Safety refusals and
refused requests are not retried.

Faults: creating a prediction is retried here (the client retries only GETs): a 429 after its
``Retry-After`` (capped at ``max_retry_after_s``), a 5xx, a timeout or a connection error with
exponential backoff and jitter, at most ``max_retries`` times, then ``ProviderUnavailableError``.
The create asks the API to hold the response until the prediction is done (``Prefer: wait``),
then polls (the client itself retries a poll answered 429/503/504, within our deadline).
A prediction still running ``timeout_s`` after its creation is canceled and raises
``ProviderTimeoutError``; ``failed``/``canceled`` raise ``PredictionFailedError`` with
Replicate's message, or ``SafetyRefusalError`` for a safety refusal. Outputs are downloaded at
once (Replicate deletes them after an hour), bounded in size and time, without the API token;
one that does not decode or has the wrong shape raises ``InvalidProviderOutputError``.

The API token is in no message, log record, repr or metadata: server text that quotes it is
scrubbed. Clients are built per event loop (an ``httpx.AsyncClient`` belongs to the loop it
first ran on), so the provider may be used from successive ``asyncio.run`` loops.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import logging
import math
import random
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx
import replicate
from replicate.exceptions import ReplicateError
from replicate.prediction import Prediction

from avatar_pipeline.concurrency import within
from avatar_pipeline.imaging.providers.base import UNKNOWN_VERSION, ImageProvider
from avatar_pipeline.imaging.providers.replicate_models import (
    ASPECT_TOLERANCE,
    DATA_URI_MAX_BYTES,
    DEFAULT_COST_PER_IMAGE,
    SAFETY_PATTERN,
    ModelCall,
    edit_call,
    generate_calls,
    references_sent,
    role_for,
    verified_png,
)
from avatar_pipeline.imaging.types import (
    EditRequest,
    GenerateRequest,
    ImageServiceError,
    InvalidProviderOutputError,
    PredictionFailedError,
    ProviderError,
    ProviderResult,
    ProviderTimeoutError,
    ProviderUnavailableError,
    SafetyRefusalError,
)

if TYPE_CHECKING:
    from avatar_pipeline.settings import Settings

logger = logging.getLogger(__name__)

MAX_OUTPUT_BYTES = 64 * 1024 * 1024
_TERMINAL = {"succeeded", "failed", "canceled"}
# What Replicate answers as the version of an official model's prediction (not a version id).
HIDDEN_VERSIONS = frozenset({"", "hidden", UNKNOWN_VERSION})
# The client drops response headers from its errors; a response hook keeps a 429's Retry-After
# in a box owned by the retrying call (a mutable box, because the request runs in a child task).
_retry_after: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "replicate_retry_after", default=None
)


class ReplicateConfigurationError(ImageServiceError, ValueError):
    """The Replicate provider cannot be built from the configuration given."""


@dataclass
class _LoopClients:
    api: replicate.Client
    http: httpx.AsyncClient  # output downloads: never carries the API token


async def _remember_retry_after(response: httpx.Response) -> None:
    box = _retry_after.get()
    if box is not None and response.status_code == 429:
        box["retry_after"] = response.headers.get("Retry-After", "")


class ReplicateProvider(ImageProvider):
    """Runs the spec's FLUX models on Replicate through the official ``replicate`` client."""

    name = "replicate"

    def __init__(
        self,
        *,
        api_token: str,
        base_url: str = "https://api.replicate.com/v1",
        edit_model: str = "black-forest-labs/flux-kontext-pro",
        multi_reference_model: str = "black-forest-labs/flux-2-pro",
        generate_model: str = "black-forest-labs/flux-1.1-pro",
        google_model: str = "google/imagen-4",
        use_google_for_generate: bool = False,
        google_edit_model: str = "google/nano-banana",
        use_google_for_edit: bool = False,
        pinned_versions: dict[str, str] | None = None,
        timeout_s: float = 300,
        poll_interval_s: float = 0.5,
        max_retries: int = 4,
        backoff_base_s: float = 0.5,
        cost_per_image: dict[str, float] | None = None,
        max_retry_after_s: float = 60.0,
        prefer_wait_s: int = 60,
        http_timeout_s: float = 30.0,
        download_timeout_s: float = 60.0,
        safety_tolerance: int = 2,
        max_prediction_attempts: int = 3,
        version_ttl_s: float = 300.0,
        data_uri_max_bytes: int = DATA_URI_MAX_BYTES,
    ) -> None:
        if not api_token or not api_token.strip():
            raise ReplicateConfigurationError(
                "the Replicate API token is empty: set REPLICATE_API_TOKEN, or use "
                "AVATAR_IMAGE_PROVIDER=offline to run without an account"
            )
        self.__token = api_token
        root = base_url.rstrip("/")
        self.base_url = root
        self._api_root = root[: -len("/v1")] if root.endswith("/v1") else root
        self.models = {
            "edit": edit_model,
            "multi_reference": multi_reference_model,
            "generate": generate_model,
            "google": google_model,
            "google_edit": google_edit_model,
        }
        self.use_google_for_generate = use_google_for_generate
        self.use_google_for_edit = use_google_for_edit
        self.max_prediction_attempts = max(1, max_prediction_attempts)
        self.version_ttl_s = version_ttl_s
        self.data_uri_max_bytes = data_uri_max_bytes
        self.pinned_versions = dict(pinned_versions or {})
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.max_retry_after_s = max_retry_after_s
        self.prefer_wait_s = prefer_wait_s
        self.http_timeout_s = http_timeout_s
        self.download_timeout_s = download_timeout_s
        self.safety_tolerance = safety_tolerance
        self.cost_per_image = {self.models[r]: c for r, c in DEFAULT_COST_PER_IMAGE.items()}
        self.cost_per_image.update(cost_per_image or {})
        self._known_versions: dict[str, str] = {}
        self._known_at: dict[str, float] = {}
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = (
            weakref.WeakKeyDictionary()
        )
        self._clients_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> ReplicateProvider:
        token = settings.replicate_api_token
        if token is None or not token.get_secret_value().strip():
            raise ReplicateConfigurationError(
                "AVATAR_IMAGE_PROVIDER=replicate needs REPLICATE_API_TOKEN in the environment "
                "(or use AVATAR_IMAGE_PROVIDER=offline)"
            )
        return cls(
            api_token=token.get_secret_value(),
            base_url=settings.replicate_base_url,
            edit_model=settings.replicate_edit_model,
            multi_reference_model=settings.replicate_multi_reference_model,
            generate_model=settings.replicate_generate_model,
            google_model=settings.replicate_google_model,
            use_google_for_generate=settings.replicate_use_google,
            google_edit_model=getattr(
                settings, "replicate_google_edit_model", "google/nano-banana"
            ),
            use_google_for_edit=getattr(settings, "replicate_use_google_for_edit", False),
            pinned_versions=getattr(settings, "replicate_pinned_versions", None) or None,
            max_prediction_attempts=getattr(settings, "replicate_max_prediction_attempts", 3),
            timeout_s=settings.replicate_timeout_seconds,
            max_retries=settings.replicate_max_retries,
        )

    def __repr__(self) -> str:
        return (
            f"ReplicateProvider(base_url={self.base_url!r}, models={self.models!r}, "
            f"pinned_versions={self.pinned_versions!r})"
        )

    # -- the ImageProvider interface ---------------------------------------------------------

    def _role(self, operation: str, reference_count: int) -> str:
        return role_for(
            operation,
            reference_count,
            use_google=self.use_google_for_generate,
            use_google_for_edit=self.use_google_for_edit,
        )

    def model_for(self, operation: str, reference_count: int = 0) -> tuple[str, str]:
        model = self.models[self._role(operation, reference_count)]
        return model, self._version_of(model)

    async def current_model_version(
        self, operation: str, reference_count: int = 0
    ) -> tuple[str, str]:
        """The model and the real version a call made now would run (looked up if stale)."""
        model = self.models[self._role(operation, reference_count)]
        return model, await self.resolve_version(model)

    async def resolve_version(self, model: str) -> str:
        """The pinned version, else the model's ``latest_version.id`` (cached ``version_ttl_s``)."""
        pinned = self.pinned_versions.get(model)
        if pinned:
            return pinned
        known = self._known_versions.get(model)
        if known and time.monotonic() - self._known_at.get(model, 0.0) < self.version_ttl_s:
            return known
        try:
            return await self._look_up_version(model)
        except ProviderError:
            if known:  # a stale id beats none; the next call looks again
                logger.warning("could not refresh the version of %s; using %s", model, known)
                return known
            raise

    async def _look_up_version(self, model: str) -> str:
        clients = self._loop_clients()
        info = await self._with_retries(
            f"look up {model}", model, lambda: clients.api.models.async_get(model)
        )
        version = info.latest_version.id if info.latest_version is not None else None
        if not version or version in HIDDEN_VERSIONS:
            raise ProviderError(
                f"Replicate reports no latest version for {model}; pin one in "
                "AVATAR_REPLICATE_PINNED_VERSIONS",
                provider=self.name,
            )
        self._known_versions[model] = version
        self._known_at[model] = time.monotonic()
        return version

    async def latest_model_versions(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for model in dict.fromkeys(self.models.values()):
            try:
                found[model] = await self._look_up_version(model)
            except ProviderError as exc:
                if model in self._active_models():
                    raise
                logger.info("model %s (not in use) has no version: %s", model, exc)
        return found

    def _active_models(self) -> set[str]:
        return {
            self.models[self._role("generate", 0)],
            self.models[self._role("edit", 1)],
            self.models[self._role("edit", 2)],
        }

    async def generate(self, request: GenerateRequest) -> ProviderResult:
        role = self._role("generate", 0)
        calls = generate_calls(role, request, safety_tolerance=self.safety_tolerance)
        model = self.models[role]
        version = await self.resolve_version(model)
        runs = await _gather_or_cancel(
            [self._run_retrying(role, model, call, version) for call in calls]
        )
        extra = {"role": role, **calls[0].extra, "seeds": [r["seed"] for r in runs]}
        return self._result(model, runs, calls[0], extra)

    async def edit(self, request: EditRequest) -> ProviderResult:
        role = self._role("edit", len(request.reference_images))
        model = self.models[role]
        version = await self.resolve_version(model)
        sent = references_sent(role, request)
        large = [
            i
            for i, ref in enumerate(request.reference_images[:sent])
            if len(ref) > self.data_uri_max_bytes
        ]
        uploaded: dict[int, str] = {}
        file_ids: list[str] = []
        try:
            for i in large:
                file_id, url = await self._upload(request.reference_images[i], model)
                file_ids.append(file_id)
                uploaded[i] = url
            call = await asyncio.to_thread(
                edit_call, role, request, safety_tolerance=self.safety_tolerance, uploaded=uploaded
            )
            run = await self._run_retrying(role, model, call, version)
        finally:
            for file_id in file_ids:
                await self._delete_file(file_id)
        return self._result(model, [run], call, {"role": role, **call.extra})

    async def _upload(self, data: bytes, model: str) -> tuple[str, str]:
        """Upload one reference through the Files API; (file id, URL to send)."""
        import io

        from PIL import Image

        with Image.open(io.BytesIO(data)) as probe:
            mime = Image.MIME.get(probe.format or "", "image/png")
        ext = mime.split("/")[-1].replace("jpeg", "jpg")
        clients = self._loop_clients()
        created = await self._with_retries(
            f"upload a {len(data)}-byte reference for {model}",
            model,
            lambda: clients.api.files.async_create(
                io.BytesIO(data), filename=f"reference.{ext}", content_type=mime
            ),
        )
        return created.id, created.urls["get"]

    async def _delete_file(self, file_id: str) -> None:
        clients = self._loop_clients()
        try:
            await within(clients.api.files.async_delete(file_id), 10)
        except (ReplicateError, httpx.HTTPError, TimeoutError) as exc:
            logger.warning("could not delete uploaded file %s (it expires anyway): %s",
                           file_id, self._describe(exc))  # fmt: skip

    async def _run_retrying(
        self, role: str, model: str, call: ModelCall, version: str
    ) -> dict[str, Any]:
        """``_run`` with transient prediction failures created again (see the module doc)."""
        retries: list[dict[str, Any]] = []
        same_seed_failures = 0
        current = call
        for attempt in range(1, self.max_prediction_attempts + 1):
            try:
                run = await self._run(role, model, current, version)
            except SafetyRefusalError:
                raise
            except (PredictionFailedError, ProviderTimeoutError, InvalidProviderOutputError) as exc:
                if attempt == self.max_prediction_attempts:
                    if retries:
                        raise type(exc)(
                            f"{exc} (after {attempt} predictions; earlier: "
                            f"{'; '.join(r['error'][:120] for r in retries)})",
                            provider=exc.provider,
                            prediction_id=exc.prediction_id,
                        ) from exc
                    raise
                same_seed_failures += 1
                retries.append(
                    {
                        "attempt": attempt,
                        "error": str(exc)[:300],
                        "prediction_id": exc.prediction_id,
                        "seed": current.seed,
                    }
                )
                if (
                    isinstance(exc, PredictionFailedError)
                    and current.seed is not None
                    and same_seed_failures >= 2
                ):
                    current = _with_seed(current, (current.seed + 7_919 * attempt) % 2**32)
                    same_seed_failures = 0
                logger.warning("prediction on %s failed (%s); creating it again (%d/%d)",
                               model, str(exc)[:200], attempt + 1,
                               self.max_prediction_attempts)  # fmt: skip
                await asyncio.sleep(self._backoff(attempt - 1))
                continue
            run["seed"] = current.seed
            run["recorded_input"] = current.recorded_input
            run["retries"] = retries
            return run
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        with self._clients_lock:
            clients = self._clients.pop(asyncio.get_running_loop(), None)
        if clients is not None:
            await clients.http.aclose()
            await clients.api._async_client.aclose()

    # -- one prediction ------------------------------------------------------------------------

    async def _run(
        self, role: str, model: str, call: ModelCall, resolved: str | None = None
    ) -> dict[str, Any]:
        """Create one prediction, wait for it, download and verify its single image."""
        clients = self._loop_clients()
        version = self.pinned_versions.get(model)
        if resolved is None:
            resolved = await self.resolve_version(model)
        wait = max(0, min(60, int(min(self.prefer_wait_s, self.timeout_s))))

        # The client sends a create without ``wait`` with no timeout at all: bound it here.
        limit = wait + self.http_timeout_s

        def create() -> Any:
            if version:
                request = clients.api.predictions.async_create(
                    version=version, input=call.input, wait=wait or False
                )
            else:
                request = clients.api.models.predictions.async_create(
                    model=model, input=call.input, wait=wait or False
                )
            return within(request, limit)

        prediction, attempts = await self._with_retries(
            f"create a prediction on {model}", model, create, count_attempts=True
        )
        try:
            prediction = await self._until_done(clients, prediction, model, time.monotonic())
        except asyncio.CancelledError:
            await self._cancel(clients, prediction.id)
            raise
        self._raise_if_unsuccessful(prediction, model)
        reported = prediction.version or ""
        real = reported if reported not in HIDDEN_VERSIONS else (version or resolved)
        urls = prediction.output if isinstance(prediction.output, list) else [prediction.output]
        if len(urls) != 1 or not isinstance(urls[0], str):
            raise InvalidProviderOutputError(
                f"prediction {prediction.id} on {model} returned {prediction.output!r:.200}, "
                "not one image URL",
                provider=self.name,
                prediction_id=prediction.id,
            )
        raw = await self._download(clients, urls[0], prediction.id, model)
        png, size, fmt = await asyncio.to_thread(
            verified_png, raw, call, ASPECT_TOLERANCE[role], prediction.id, model
        )
        return {
            "png": png,
            "prediction_id": prediction.id,
            "version": real,
            "version_source": "pinned"
            if version
            else ("prediction" if reported not in HIDDEN_VERSIONS else "latest_version lookup"),
            "attempts": attempts,
            "output_size": list(size),
            "output_format_received": fmt,
            "predict_time_s": (prediction.metrics or {}).get("predict_time"),
        }

    async def _until_done(
        self, clients: _LoopClients, prediction: Prediction, model: str, started: float
    ) -> Prediction:
        deadline = started + self.timeout_s
        poll_errors = 0
        while prediction.status not in _TERMINAL:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                await self._cancel(clients, prediction.id)
                raise ProviderTimeoutError(
                    f"prediction {prediction.id} on {model} was still {prediction.status} after "
                    f"{self.timeout_s:g} s and was canceled; retry later or raise the timeout",
                    provider=self.name,
                    prediction_id=prediction.id,
                )
            await asyncio.sleep(min(self.poll_interval_s, remaining))
            try:
                prediction = await within(
                    clients.api.predictions.async_get(prediction.id),
                    max(0.05, deadline - time.monotonic()),
                )
            except TimeoutError:
                continue  # the deadline check above cancels it
            except (ReplicateError, httpx.TransportError, ValueError) as exc:
                if isinstance(exc, ReplicateError) and not _retryable(exc.status):
                    await self._cancel(clients, prediction.id)
                    raise self._rejected(exc, f"poll prediction {prediction.id}", model) from None
                poll_errors += 1
                if poll_errors > self.max_retries:
                    await self._cancel(clients, prediction.id)
                    raise ProviderUnavailableError(
                        f"polling prediction {prediction.id} on {model} failed {poll_errors} "
                        f"times (last: {self._describe(exc)}); it was canceled, retry later",
                        provider=self.name,
                        prediction_id=prediction.id,
                    ) from None
                logger.warning("polling %s failed (%s); retrying", prediction.id,
                               self._describe(exc))  # fmt: skip
        return prediction

    def _raise_if_unsuccessful(self, prediction: Prediction, model: str) -> None:
        if prediction.status == "succeeded":
            return
        if prediction.status == "failed" and not prediction.error and not prediction.output:
            raise PredictionFailedError(
                f"prediction {prediction.id} on {model} failed with no output and no error "
                "message (a known transient failure of this model)",
                provider=self.name,
                prediction_id=prediction.id,
            )
        message = self._scrub(str(prediction.error or "no error message"))
        if prediction.status == "failed" and SAFETY_PATTERN.search(message):
            raise SafetyRefusalError(
                f"Replicate's safety filter refused prediction {prediction.id} on {model}: "
                f"{message}. Rephrase the prompt or change the reference image",
                provider=self.name,
                prediction_id=prediction.id,
            )
        raise PredictionFailedError(
            f"prediction {prediction.id} on {model} {prediction.status}: {message}",
            provider=self.name,
            prediction_id=prediction.id,
        )

    async def _cancel(self, clients: _LoopClients, prediction_id: str) -> None:
        try:
            await within(clients.api.predictions.async_cancel(prediction_id), 10)
            logger.warning("canceled prediction %s", prediction_id)
        except (ReplicateError, httpx.HTTPError, TimeoutError) as exc:
            logger.warning("could not cancel prediction %s: %s", prediction_id,
                           self._describe(exc))  # fmt: skip

    async def _download(
        self, clients: _LoopClients, url: str, prediction_id: str, model: str
    ) -> bytes:
        if url.startswith("data:"):
            try:
                return base64.b64decode(url.split(",", 1)[1], validate=True)
            except (IndexError, ValueError) as exc:
                raise InvalidProviderOutputError(
                    f"prediction {prediction_id} on {model} returned a malformed data URL",
                    provider=self.name,
                    prediction_id=prediction_id,
                ) from exc
        last = ""
        for attempt in range(min(self.max_retries, 2) + 1):
            if attempt:
                await asyncio.sleep(self._backoff(attempt - 1))
            try:
                async with (
                    asyncio.timeout(self.download_timeout_s),
                    clients.http.stream("GET", url) as response,
                ):
                    if response.status_code == 200:
                        return await self._read_bounded(response, prediction_id, model)
                    last = f"HTTP {response.status_code}"
                    if not _retryable(response.status_code):
                        break
            except (httpx.HTTPError, TimeoutError) as exc:
                last = self._describe(exc)
        raise InvalidProviderOutputError(
            f"could not download the output of prediction {prediction_id} on {model} ({last}); "
            "Replicate keeps outputs for an hour only: run the request again",
            provider=self.name,
            prediction_id=prediction_id,
        )

    async def _read_bounded(
        self, response: httpx.Response, prediction_id: str, model: str
    ) -> bytes:
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_OUTPUT_BYTES:
                raise InvalidProviderOutputError(
                    f"output of prediction {prediction_id} on {model} is larger than "
                    f"{MAX_OUTPUT_BYTES // 2**20} MiB",
                    provider=self.name,
                    prediction_id=prediction_id,
                )
            chunks.append(chunk)
        return b"".join(chunks)

    # -- retries -------------------------------------------------------------------------------

    async def _with_retries(
        self,
        what: str,
        model: str,
        call: Callable[[], Awaitable[Any]],
        *,
        count_attempts: bool = False,
    ) -> Any:
        last = ""
        for attempt in range(self.max_retries + 1):
            box: dict[str, str] = {}
            _retry_after.set(box)
            try:
                result = await call()
                return (result, attempt + 1) if count_attempts else result
            except ReplicateError as exc:
                if not _retryable(exc.status):
                    raise self._rejected(exc, what, model) from None
                if exc.status == 429:
                    delay = self._retry_after_delay(box.get("retry_after"), attempt)
                else:
                    delay = self._backoff(attempt)
                last = self._describe(exc)
            except (httpx.TransportError, TimeoutError) as exc:  # timeouts, refused/reset
                delay = self._backoff(attempt)
                last = self._describe(exc)
            except ValueError as exc:  # not JSON, or not a prediction: a proxy's error page?
                delay = self._backoff(attempt)
                last = f"unreadable response ({type(exc).__name__})"
            if attempt == self.max_retries:
                break
            logger.warning("could not %s (%s); retry %d/%d in %.2f s", what, last,
                           attempt + 1, self.max_retries, delay)  # fmt: skip
            await asyncio.sleep(delay)
        raise ProviderUnavailableError(
            f"could not {what} after {self.max_retries + 1} attempts (last: {last}); Replicate "
            "is rate-limiting or unavailable: retry later",
            provider=self.name,
        )

    def _backoff(self, attempt: int) -> float:
        delay = min(30.0, self.backoff_base_s * 2**attempt)
        return delay / 2 + random.uniform(0, delay / 2)  # jitter, not cryptography

    def _retry_after_delay(self, header: str | None, attempt: int) -> float:
        seconds: float | None = None
        if header:
            try:
                seconds = float(header)
            except ValueError:
                try:
                    seconds = parsedate_to_datetime(header).timestamp() - time.time()
                except (TypeError, ValueError):
                    seconds = None
        if seconds is None or not math.isfinite(seconds):
            return self._backoff(attempt)
        return min(max(seconds, 0.0), self.max_retry_after_s)

    def _rejected(self, exc: ReplicateError, what: str, model: str) -> ProviderError:
        hint = {
            401: "check REPLICATE_API_TOKEN",
            403: "the token may not use this model",
            404: f"check the model id or pinned version of {model}",
            422: "the model rejected its input",
        }.get(exc.status or 0, "see the detail")
        return ProviderError(
            f"Replicate refused to {what} ({self._describe(exc)}): {hint}", provider=self.name
        )

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, ReplicateError):
            text = f"HTTP {exc.status}: {exc.title or ''} {exc.detail or ''}".strip()
        else:
            text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return self._scrub(text)[:500]

    def _scrub(self, text: str) -> str:
        return text.replace(self.__token, "[redacted]")

    # -- helpers -------------------------------------------------------------------------------

    def _version_of(self, model: str) -> str:
        known = self.pinned_versions.get(model) or self._known_versions.get(model)
        return known or UNKNOWN_VERSION

    def _loop_clients(self) -> _LoopClients:
        loop = asyncio.get_running_loop()
        with self._clients_lock:
            clients = self._clients.get(loop)
            if clients is None:
                # Clients of finished loops (one per asyncio.run) can only be dropped.
                for old in [old for old in self._clients if old.is_closed()]:
                    del self._clients[old]
                timeout = httpx.Timeout(self.http_timeout_s, connect=min(10.0, self.http_timeout_s))
                api = replicate.Client(
                    api_token=self.__token,
                    base_url=self._api_root,
                    timeout=timeout,
                    event_hooks={"response": [_remember_retry_after]},
                    limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
                )
                http = httpx.AsyncClient(
                    timeout=httpx.Timeout(self.download_timeout_s, connect=10.0),
                    follow_redirects=True,
                    limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
                )
                clients = _LoopClients(api, http)
                self._clients[loop] = clients
            return clients

    def _result(
        self, model: str, runs: list[dict[str, Any]], call: ModelCall, extra: dict[str, Any]
    ) -> ProviderResult:
        extra = dict(extra)
        extra["input"] = runs[0].get("recorded_input", call.recorded_input)
        extra["create_attempts"] = [r["attempts"] for r in runs]
        extra["output_size"] = runs[0]["output_size"]
        extra["output_format_received"] = [r["output_format_received"] for r in runs]
        extra["predict_time_s"] = [r["predict_time_s"] for r in runs]
        extra["version_source"] = runs[0].get("version_source")
        retries = [r for run in runs for r in run.get("retries", [])]
        if retries:
            extra["prediction_retries"] = retries
        seed = runs[0].get("seed", call.seed)
        if seed != call.seed:
            extra["seed_requested"] = call.seed
        return ProviderResult(
            images=tuple(r["png"] for r in runs),
            provider=self.name,
            model=model,
            model_version=runs[0]["version"],
            prompt_sent=call.input["prompt"],
            seed=seed,
            cost_usd=round(self.cost_per_image.get(model, 0.0) * len(runs), 6),
            prediction_ids=tuple(r["prediction_id"] for r in runs),
            extra=extra,
        )


def _with_seed(call: ModelCall, seed: int) -> ModelCall:
    from dataclasses import replace

    return replace(
        call,
        input={**call.input, "seed": seed},
        recorded_input={**call.recorded_input, "seed": seed},
        seed=seed,
    )


def _retryable(status: int | None) -> bool:
    return status is None or status == 429 or status >= 500


async def _gather_or_cancel(coros: list[Any]) -> list[Any]:
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
