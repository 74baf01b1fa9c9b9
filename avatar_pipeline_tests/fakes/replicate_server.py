"""A fake Replicate HTTP API on 127.0.0.1 that the real ``replicate`` client talks to.

It implements what the ReplicateProvider uses: creating predictions through a model
(``POST /v1/models/{owner}/{name}/predictions``) or a version (``POST /v1/predictions``), reading
(``GET /v1/predictions/{id}``) and canceling them, ``Prefer: wait[=n]`` (the create response is
held until the prediction finishes or n seconds pass), model lookups with ``latest_version`` and
``/versions``, and outputs served as real images at ``/files/{id}.{ext}`` (no auth, like
Replicate's delivery host). Every request is recorded (auth header removed) for assertions.

Like Replicate, an official model (every model in ``official``, by default all of them) cannot be
pinned from its model endpoint and its predictions answer ``"version": "hidden"``; its current
version is only visible as ``latest_version.id`` of ``GET /v1/models/{owner}/{name}``.
``bump_version(model)`` publishes a new version (a model upgrade). The Files API
(``POST /v1/files``, multipart field ``content``; ``GET``/``DELETE /v1/files/{id}``) stores
uploads whose ``urls.get`` a prediction input may then reference.

Outputs are drawn with Pillow, deterministically from the seed, at the requested aspect ratio:
about ``megapixels`` (default one) in multiples of 16, or Kontext's resolution buckets for a
Kontext model. An edit (any input image: ``input_image``, ``input_images``, ``image_input``)
returns its first reference re-framed to the output size with a prompt-dependent local change inside
the subject, in the subject's own colours (a new picture of the same subject, so a consistency gate
can pass on it), unless the prediction's version is in
``unfaithful_versions`` (a regressed model that ignores its references).

Faults are injected per create request, from a deterministic schedule (``schedule()``) or at a
seeded random rate (``random_faults()``); ``schedule(..., on="get")`` targets polls and
``on="download"`` output downloads instead.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import json
import math
import random
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image, ImageChops, ImageDraw

from avatar_pipeline_tests.fakes import language_model

DEFAULT_TOKEN = "r8_fake-test-token"
DEFAULT_MODELS = (
    "black-forest-labs/flux-kontext-pro",
    "black-forest-labs/flux-2-pro",
    "black-forest-labs/flux-1.1-pro",
    "google/imagen-4",
    "google/nano-banana",
    "google/nano-banana-pro",
)
HIDDEN = "hidden"  # what Replicate answers as the version of an official model's prediction
# FLUX.1 Kontext's ~1 MP resolution buckets (width, height).
KONTEXT_BUCKETS = (
    (672, 1568), (688, 1504), (720, 1456), (752, 1392), (800, 1328), (832, 1248), (880, 1184),
    (944, 1104), (1024, 1024), (1104, 944), (1184, 880), (1248, 832), (1328, 800), (1392, 752),
    (1456, 720), (1504, 688), (1568, 672),
)  # fmt: skip

# Fault kinds. Request-level: the HTTP answer to the create (or poll). Prediction-level: the
# prediction is created and then misbehaves.
RATE_LIMIT = "rate_limit"  # 429 with Retry-After
SERVER_ERROR = "server_error"  # 500
UNAVAILABLE = "unavailable"  # 503
SLOW = "slow"  # wait delay_s, then answer normally
GARBAGE = "garbage"  # 200 with an HTML body (a proxy's error page), nothing created
FAILED = "failed"  # status failed, error = message
KEYERROR_SAMPLE = "keyerror_sample"  # flux-2-pro's intermittent failure: error "KeyError: 'sample'"
NO_OUTPUT = "no_output"  # nano-banana(-pro)'s quirk: status failed, no output and no error
SAFETY = "safety"  # status failed, error = Replicate's E005 sensitive-content message
CORRUPT_OUTPUT = "corrupt_output"  # output bytes that are not an image
WRONG_SIZE = "wrong_size"  # output image with twice the requested aspect ratio
NEVER_FINISHES = "never_finishes"  # stays "processing" until canceled
REQUEST_FAULTS = (RATE_LIMIT, SERVER_ERROR, UNAVAILABLE, SLOW, GARBAGE)
ALL_FAULTS = (
    RATE_LIMIT, SERVER_ERROR, UNAVAILABLE, SLOW, GARBAGE, FAILED, SAFETY, CORRUPT_OUTPUT,
    WRONG_SIZE, NEVER_FINISHES, KEYERROR_SAMPLE, NO_OUTPUT,
)  # fmt: skip
KEYERROR_MESSAGE = "Prediction failed.\n\nKeyError: 'sample'"
SAFETY_MESSAGE = "E005: The input or output was flagged as sensitive. Please try again."


@dataclass(frozen=True)
class Fault:
    """One injected fault. ``message`` may contain ``{authorization}``: the caller's header."""

    kind: str
    retry_after: str = "1"
    delay_s: float = 1.0
    message: str = "CUDA out of memory"


@dataclass
class RecordedRequest:
    method: str
    path: str
    kind: str  # create | get | cancel | model | versions | download | file | other
    headers: dict[str, str]
    body: Any
    authorized: bool
    had_authorization: bool
    prediction_id: str | None = None
    status: int = 0
    fault: str | None = None
    at: float = field(default_factory=time.monotonic)
    body_bytes: int = 0

    @property
    def prompt(self) -> str:
        if isinstance(self.body, dict):
            return str((self.body.get("input") or {}).get("prompt", ""))
        return ""


@dataclass
class FakePrediction:
    id: str
    model: str
    version: str
    input: dict[str, Any]
    created_at: float
    ready_at: float
    fault: Fault | None
    output: bytes
    output_ext: str
    canceled: bool = False
    render: Any = None  # draws (output bytes, ext) on first download
    _drawn: bool = False
    _draw_lock: threading.Lock = field(default_factory=threading.Lock)
    text: list[str] | None = None  # a language model's streamed chunks

    def status(self, now: float) -> str:
        if self.canceled:
            return "canceled"
        kind = self.fault.kind if self.fault else None
        if kind == NEVER_FINISHES or now < self.ready_at:
            return "processing"
        return "failed" if kind in (FAILED, SAFETY, KEYERROR_SAMPLE, NO_OUTPUT) else "succeeded"


class FakeReplicateServer:
    """Start with ``start()`` or as a context manager; ``base_url`` is what the client gets."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        processing_s: float = 0.05,
        models: tuple[str, ...] = DEFAULT_MODELS,
        official: tuple[str, ...] | None = None,
        megapixels: float = 1.0,
    ) -> None:
        self.token = token
        self.processing_s = processing_s
        self.megapixels = megapixels
        self.official = set(models if official is None else official)
        self.unfaithful_versions: set[str] = set()
        self.files: dict[str, tuple[str, str, bytes]] = {}  # id -> (name, content type, data)
        self.output_format_override: str | None = None  # e.g. "webp": ignore output_format
        self.requests: list[RecordedRequest] = []
        self.predictions: dict[str, FakePrediction] = {}
        self.latest_versions: dict[str, str] = {}
        self.versions: dict[str, str] = {}  # version id -> model
        for model in models:
            self.set_latest_version(model, _version_id(model, 1))
        # Language models (the scene writer's): official, streamed text; tests may replace
        # ``language_reply`` (model input -> answer text).
        self.language_models = set(language_model.LANGUAGE_MODELS)
        self.language_reply = language_model.default_language_reply
        for model in language_model.LANGUAGE_MODELS:
            self.set_latest_version(model, _version_id(model, 1))
            self.official.add(model)
        self._lock = threading.Lock()
        self._scheduled: dict[str, deque[Fault | None]] = {
            "create": deque(),
            "get": deque(),
            "download": deque(),
        }
        self._random: tuple[float, random.Random, tuple[Fault, ...]] | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._root_url: str | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeReplicateServer:
        server = self

        class Handler(_Handler):
            fake = server

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        httpd.daemon_threads = True
        httpd.request_queue_size = 512
        httpd.allow_reuse_address = True
        httpd.server_bind()
        httpd.server_activate()
        self._httpd = httpd
        host, port = httpd.server_address[:2]
        self._root_url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-replicate"
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeReplicateServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        assert self._root_url is not None, "start() the server first"
        return self._root_url

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    # -- configuration -----------------------------------------------------------------------

    def set_latest_version(self, model: str, version: str) -> None:
        """Make ``version`` the model's newest (simulates an upgrade); old versions stay valid."""
        self.latest_versions[model] = version
        self.versions[version] = model

    def bump_version(self, model: str, *, unfaithful: bool = False) -> str:
        """Publish a new version of ``model`` (an upgrade) and return its id; ``unfaithful``
        makes that version ignore its references (a regressed model)."""
        n = sum(1 for owner in self.versions.values() if owner == model) + 1
        version = _version_id(model, n)
        self.set_latest_version(model, version)
        if unfaithful:
            self.unfaithful_versions.add(version)
        return version

    def schedule(self, *faults: Fault | str | None, on: str = "create") -> None:
        """Faults for the next requests of kind ``on`` ('create', 'get', 'download'), in order."""
        with self._lock:
            self._scheduled[on].extend(Fault(f) if isinstance(f, str) else f for f in faults)

    def random_faults(self, rate: float, seed: int, faults: tuple[Fault | str, ...]) -> None:
        """Each create fails with probability ``rate``, with a fault drawn from ``faults``."""
        chosen = tuple(Fault(f) if isinstance(f, str) else f for f in faults)
        self._random = (rate, random.Random(seed), chosen)

    def _next_fault(self, on: str) -> Fault | None:
        with self._lock:
            if self._scheduled[on]:
                return self._scheduled[on].popleft()
            if on == "create" and self._random is not None:
                rate, rng, faults = self._random
                if rng.random() < rate:
                    return rng.choice(faults)
        return None

    # -- what tests read ---------------------------------------------------------------------

    def recorded(self, kind: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if kind is None or r.kind == kind]

    def creates(self) -> list[RecordedRequest]:
        return self.recorded("create")

    def load_stats(self, window_s: float = 60.0) -> dict[str, int]:
        """What the provider saw (fleet): the most predictions processing at once (created,
        not yet ready) and the most creates in any ``window_s`` seconds — to compare with the
        account's limits (Replicate: 600 creates a minute)."""
        with self._lock:
            spans = [(p.created_at, p.ready_at) for p in self.predictions.values()]
        edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
        running = peak = 0
        for _, step in edges:  # an end sorts before a start at the same instant
            running += step
            peak = max(peak, running)
        starts = sorted(a for a, _ in spans)
        most, first = 0, 0
        for last, t in enumerate(starts):
            while starts[first] <= t - window_s:
                first += 1
            most = max(most, last - first + 1)
        return {"predictions": len(spans), "max_concurrent": peak, "max_creates_per_window": most}

    def create_count(self) -> int:
        """Prediction creates that made a prediction (what Replicate bills)."""
        return sum(1 for r in self.creates() if r.prediction_id is not None)

    def resolve_input_image(self, value: Any) -> bytes | None:
        """The bytes of an input image given as a data URL or as a Files API URL."""
        if not isinstance(value, str):
            return None
        if value.startswith("data:"):
            return data_url_bytes(value)
        if (m := _FILE_URL.search(value)) and m.group(1) in self.files:
            return self.files[m.group(1)][2]
        return None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    # -- behaviour ---------------------------------------------------------------------------

    def _create(self, model: str, version: str, body: dict[str, Any], fault: Fault | None) -> str:
        model_input = body.get("input") or {}
        now = time.monotonic()
        ready_at = now + self.processing_s
        refs = []
        for field_name in ("input_image", "input_images", "image_input"):
            value = model_input.get(field_name)
            for item in value if isinstance(value, list) else [value]:
                data = self.resolve_input_image(item)
                if data is not None:
                    refs.append(data)
        faithful = version not in self.unfaithful_versions
        text = None
        if model in self.language_models:  # a language model answers streamed text
            text = language_model.stream_chunks(self.language_reply(model_input))
        # Drawn on first download (once): a create answers at once, however big the output.
        render = None
        if text is None:
            render = functools.partial(
                _render,
                model,
                model_input,
                fault,
                self.output_format_override,
                refs if faithful else [],
                self.megapixels,
                version,
            )
        output, ext = (
            b"",
            "txt"
            if text is not None
            else _output_ext(model, model_input, self.output_format_override),
        )
        prediction = FakePrediction(
            id=uuid.uuid4().hex[:20],
            model=model,
            version=version,
            input=model_input,
            created_at=now,
            ready_at=ready_at,
            fault=fault,
            output=output,
            output_ext=ext,
            text=text,
            render=render,
        )
        with self._lock:
            self.predictions[prediction.id] = prediction
        return prediction.id

    def output_of(self, prediction: FakePrediction) -> bytes:
        """The prediction's output bytes (drawn on first use)."""
        with prediction._draw_lock:
            if not prediction._drawn and prediction.render is not None:
                prediction.output, _ = prediction.render()
            prediction._drawn = True
        return prediction.output

    def prediction_json(self, prediction_id: str, authorization: str) -> dict[str, Any]:
        p = self.predictions[prediction_id]
        status = p.status(time.monotonic())
        error = None
        if status == "failed":
            assert p.fault is not None
            text = {SAFETY: SAFETY_MESSAGE, KEYERROR_SAMPLE: KEYERROR_MESSAGE}.get(
                p.fault.kind, p.fault.message
            )
            error = (
                None
                if p.fault.kind == NO_OUTPUT
                else text.replace("{authorization}", authorization)
            )
        output = f"{self.root_url}/files/{p.id}.{p.output_ext}" if status == "succeeded" else None
        if p.text is not None:
            output = p.text if status == "succeeded" else None
        return {
            "id": p.id,
            "model": p.model,
            "version": HIDDEN if p.model in self.official else p.version,
            "input": p.input,
            "status": status,
            "output": output,
            "error": error,
            "logs": "",
            "metrics": {"predict_time": self.processing_s} if status == "succeeded" else {},
            "created_at": "2025-01-01T00:00:00.000Z",
            "started_at": "2025-01-01T00:00:00.100Z",
            "completed_at": "2025-01-01T00:00:01.000Z"
            if status in ("succeeded", "failed")
            else None,
            "urls": {
                "get": f"{self.base_url}/predictions/{p.id}",
                "cancel": f"{self.base_url}/predictions/{p.id}/cancel",
            },
        }

    def hold_until_done(self, prediction_id: str, wait_s: float) -> None:
        p = self.predictions[prediction_id]
        deadline = time.monotonic() + wait_s
        while (now := time.monotonic()) < deadline and p.status(now) == "processing":
            # Status changes at ready_at (or on cancel): sleep until then, re-checking a
            # never-finishing one now and then.
            until = min(deadline, p.ready_at if p.ready_at > now else now + 0.05)
            time.sleep(max(0.001, until - now))

    def model_json(self, model: str) -> dict[str, Any]:
        owner, name = model.split("/", 1)
        return {
            "url": f"https://replicate.com/{model}",
            "owner": owner,
            "name": name,
            "description": "fake",
            "visibility": "public",
            "github_url": None,
            "paper_url": None,
            "license_url": None,
            "run_count": 0,
            "cover_image_url": None,
            "default_example": None,
            "latest_version": _version_json(self.latest_versions[model]),
        }

    def file_json(self, file_id: str) -> dict[str, Any]:
        name, content_type, data = self.files[file_id]
        return {
            "id": file_id,
            "name": name,
            "content_type": content_type,
            "size": len(data),
            "etag": file_id,
            "checksums": {},
            "metadata": {},
            "created_at": "2025-01-01T00:00:00Z",
            "expires_at": "2025-01-02T00:00:00Z",
            "urls": {"get": f"{self.base_url}/files/{file_id}"},
        }


def _version_id(model: str, n: int) -> str:
    return f"{re.sub(r'[^a-z0-9]', '', model.split('/')[-1])}{n:04d}" + "0" * 40


def _version_json(version: str) -> dict[str, Any]:
    return {
        "id": version,
        "created_at": "2025-01-01T00:00:00Z",
        "cog_version": "0.9.0",
        "openapi_schema": {},
    }


def output_size(
    model: str,
    model_input: dict[str, Any],
    megapixels: float = 1.0,
    first_reference: tuple[int, int] | None = None,
) -> tuple[int, int]:
    """The pixel size a model of this family would return for ``model_input``."""
    label = model_input.get("aspect_ratio", "1:1")
    if label == "custom":
        return int(model_input["width"]), int(model_input["height"])
    scale = math.sqrt(megapixels)
    if label == "match_input_image":
        if first_reference is None:
            label = "1:1"
        else:
            w, h = first_reference
            height = math.sqrt(1024 * 1024 * megapixels * h / w)
            return round(height * w / h / 16) * 16, round(height / 16) * 16
    a, b = (int(x) for x in label.split(":"))
    if "kontext" in model:
        target = math.log(a / b)
        w, h = min(KONTEXT_BUCKETS, key=lambda wh: abs(math.log(wh[0] / wh[1]) - target))
        return max(16, round(w * scale)), max(16, round(h * scale))
    height = math.sqrt(1024 * 1024 * megapixels * b / a)
    return round(height * a / b / 16) * 16, round(height / 16) * 16


def _render(
    model: str,
    model_input: dict[str, Any],
    fault: Fault | None,
    fmt_override: str | None,
    references: list[bytes] | None = None,
    megapixels: float = 1.0,
    version: str = "",
) -> tuple[bytes, str]:
    kind = fault.kind if fault else None
    ext = _output_ext(model, model_input, fmt_override)
    if kind == CORRUPT_OUTPUT:
        return b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 64, ext
    reference = None
    if references:
        with contextlib.suppress(Exception), Image.open(io.BytesIO(references[0])) as opened:
            reference = opened.convert("RGB")
    width, height = output_size(
        model, model_input, megapixels, reference.size if reference is not None else None
    )
    if kind == WRONG_SIZE:
        width *= 2
    seed = model_input.get("seed")
    rng = random.Random(seed if seed is not None else str(model_input.get("prompt")))
    if reference is not None:
        return _edited(reference, (width, height), str(model_input.get("prompt")), ext), ext
    # A palette image: a real PNG of the right size that is cheap to encode and decode, so
    # that many concurrent predictions do not make the fake itself the bottleneck. It shows one
    # figure (body, head, hair, eyes) in seeded colours on a flat background, so that an edit
    # of it has a subject to change.
    image = Image.new("P", (width, height), 0)
    image.putpalette([rng.randrange(256) for _ in range(6 * 3)])
    draw = ImageDraw.Draw(image)
    side = min(width, height)
    cx = width // 2 + rng.randrange(-side // 10, side // 10 + 1)
    head = side // 7 + rng.randrange(side // 20 + 1)
    top = height // 8 + rng.randrange(height // 16 + 1)
    hy = top + head  # the head's centre
    draw.ellipse((cx - 2 * head, hy + head // 2, cx + 2 * head, height + head), fill=1)  # body
    draw.ellipse((cx - head, hy - head, cx + head, hy + head), fill=2)  # head
    draw.chord((cx - head - 4, hy - head - 4, cx + head + 4, hy + head // 2), 180, 360, fill=3)
    eye = max(2, head // 6)
    for ex in (cx - head // 2, cx + head // 2):
        draw.ellipse((ex - eye, hy + eye - eye, ex + eye, hy + 2 * eye), fill=4)
    draw.ellipse((cx - 2 * eye, hy + head // 2, cx + 2 * eye, hy + head // 2 + eye), fill=5)
    if version and not version.endswith("0001" + "0" * 40):
        # another model version draws the same picture a little differently
        vr = random.Random(version)
        x, y = vr.randrange(width), vr.randrange(height)
        draw.rectangle((x, y, x + max(2, width // 64), y + max(2, height // 64)), fill=1)
    buffer = io.BytesIO()
    if ext == "png":
        image.save(buffer, format="PNG", compress_level=1)
    else:
        image.convert("RGB").save(buffer, format={"jpg": "JPEG", "webp": "WEBP"}.get(ext, "PNG"))
    return buffer.getvalue(), ext


def _output_ext(model: str, model_input: dict[str, Any], fmt_override: str | None) -> str:
    default_format = "jpg" if "nano-banana" in model else "webp"
    fmt = (fmt_override or str(model_input.get("output_format", default_format))).lower()
    return {"jpeg": "jpg"}.get(fmt, fmt)


def _subject_box(image: Image.Image) -> tuple[int, int, int, int]:
    """The box of what differs from the top-left corner's colour (the whole frame if nothing)."""
    corner = image.getpixel((0, 0))
    flat = Image.new("RGB", image.size, corner)
    mask = ImageChops.difference(image, flat).convert("L").point(lambda v: 255 if v > 24 else 0)
    return mask.getbbox() or (0, 0, image.width, image.height)


def _distance(a: Any, b: Any) -> int:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True))


def _edited(reference: Image.Image, size: tuple[int, int], prompt: str, ext: str) -> bytes:
    """An edit: the reference re-framed to ``size`` with a local change chosen by the prompt.

    Like a reference-based editor asked for another expression or pose, it keeps the subject
    and its colours and redraws part of it: an ellipse (about a sixth of the subject's smaller
    side) inside the subject's box, painted in a colour taken from the subject itself, at a
    place chosen by the prompt (two prompts change two different places).
    """
    image = reference.resize(size)
    rng = random.Random(prompt)
    x0, y0, x1, y1 = _subject_box(image)
    bw, bh = max(1, x1 - x0), max(1, y1 - y0)
    cx = x0 + bw // 5 + rng.randrange(max(1, 3 * bw // 5))
    cy = y0 + bh // 5 + rng.randrange(max(1, 3 * bh // 5))
    corner, here = image.getpixel((0, 0)), image.getpixel((cx, cy))
    colour = corner
    for _ in range(64):  # a colour of the subject, other than the background's and the spot's
        colour = image.getpixel((x0 + rng.randrange(bw), y0 + rng.randrange(bh)))
        if min(_distance(colour, corner), _distance(colour, here)) > 48:
            break
    r = max(2, min(bw, bh) // 6)
    draw = ImageDraw.Draw(image)
    draw.ellipse((cx - r, cy - r // 2, cx + r, cy + r // 2), fill=colour)
    buffer = io.BytesIO()
    if ext == "png":
        image.save(buffer, format="PNG", compress_level=1)
    else:
        image.save(buffer, format={"jpg": "JPEG", "webp": "WEBP"}.get(ext, "PNG"))
    return buffer.getvalue()


_FILE_URL = re.compile(r"/v1/files/([A-Za-z0-9]+)(?:/download)?$")
_FILES = re.compile(r"^/v1/files$")
_FILE_ITEM = re.compile(r"^/v1/files/([A-Za-z0-9]+)$")
_MODEL_PREDICTIONS = re.compile(r"^/v1/models/([^/]+)/([^/]+)/predictions$")
_MODEL = re.compile(r"^/v1/models/([^/]+)/([^/]+)$")
_VERSIONS = re.compile(r"^/v1/models/([^/]+)/([^/]+)/versions$")
_PREDICTION = re.compile(r"^/v1/predictions/([^/]+)$")
_CANCEL = re.compile(r"^/v1/predictions/([^/]+)/cancel$")
_FILE = re.compile(r"^/files/([^/.]+)\.\w+$")


class _Handler(BaseHTTPRequestHandler):
    fake: FakeReplicateServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self._raw = raw
        authorization = self.headers.get("Authorization", "")
        path = self.path.split("?", 1)[0]
        record = RecordedRequest(
            method=method,
            path=path,
            kind="other",
            headers={k.lower(): v for k, v in self.headers.items() if k.lower() != "authorization"},
            body=body,
            authorized=authorization == f"Bearer {self.fake.token}",
            had_authorization=bool(authorization),
            body_bytes=len(raw),
        )
        self.fake._record(record)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # client gave up
            self._route(method, path, body, authorization, record)

    def _route(
        self, method: str, path: str, body: Any, authorization: str, record: RecordedRequest
    ) -> None:
        fake = self.fake
        if method == "GET" and (m := _FILE.match(path)):
            record.kind = "download"
            prediction = fake.predictions.get(m.group(1))
            if prediction is None:
                return self._send(record, 404, {"detail": "not found"})
            fault = fake._next_fault("download")
            record.fault = fault.kind if fault else None
            if self._request_fault(record, fault, authorization):
                return None
            mime = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
            return self._send_bytes(record, fake.output_of(prediction), mime[prediction.output_ext])
        if not record.authorized:
            return self._send(
                record,
                401,
                {"title": "Unauthenticated", "detail": "You did not pass a valid token"},
            )
        if _FILES.match(path) or _FILE_ITEM.match(path):
            return self._files(method, path, record)
        if method == "POST" and (
            (m := _MODEL_PREDICTIONS.match(path)) or path == "/v1/predictions"
        ):
            record.kind = "create"
            if m:
                model = f"{m.group(1)}/{m.group(2)}"
                if model not in fake.latest_versions:
                    return self._send(record, 404, {"detail": f"model {model} not found"})
                version = fake.latest_versions[model]
            else:
                version = str((body or {}).get("version", ""))
                if version not in fake.versions:
                    return self._send(record, 422, {"detail": f"invalid version {version!r}"})
                model = fake.versions[version]
            fault = fake._next_fault("create")
            record.fault = fault.kind if fault else None
            if self._request_fault(record, fault, authorization):
                return None
            prediction_id = fake._create(model, version, body or {}, fault)
            record.prediction_id = prediction_id
            wait = _prefer_wait(self.headers.get("Prefer"))
            if wait:
                fake.hold_until_done(prediction_id, wait)
            return self._send(record, 201, fake.prediction_json(prediction_id, authorization))
        if method == "GET" and (m := _PREDICTION.match(path)):
            record.kind, record.prediction_id = "get", m.group(1)
            if m.group(1) not in fake.predictions:
                return self._send(record, 404, {"detail": "prediction not found"})
            fault = fake._next_fault("get")
            record.fault = fault.kind if fault else None
            if self._request_fault(record, fault, authorization):
                return None
            return self._send(record, 200, fake.prediction_json(m.group(1), authorization))
        if method == "POST" and (m := _CANCEL.match(path)):
            record.kind, record.prediction_id = "cancel", m.group(1)
            prediction = fake.predictions.get(m.group(1))
            if prediction is None:
                return self._send(record, 404, {"detail": "prediction not found"})
            if prediction.status(time.monotonic()) == "processing":
                prediction.canceled = True
            return self._send(record, 200, fake.prediction_json(m.group(1), authorization))
        if method == "GET" and (m := _VERSIONS.match(path)):
            record.kind = "versions"
            model = f"{m.group(1)}/{m.group(2)}"
            found = [v for v, owner in fake.versions.items() if owner == model]
            results = [_version_json(v) for v in reversed(found)]
            return self._send(record, 200, {"next": None, "previous": None, "results": results})
        if method == "GET" and (m := _MODEL.match(path)):
            record.kind = "model"
            model = f"{m.group(1)}/{m.group(2)}"
            if model not in fake.latest_versions:
                return self._send(record, 404, {"detail": f"model {model} not found"})
            return self._send(record, 200, fake.model_json(model))
        return self._send(record, 404, {"detail": f"no route for {method} {path}"})

    def _files(self, method: str, path: str, record: RecordedRequest) -> None:
        """The Files API: upload (multipart, field ``content``), read metadata, delete."""
        fake = self.fake
        record.kind = "file"
        if method == "POST" and _FILES.match(path):
            import email.parser
            import email.policy

            header = f"Content-Type: {self.headers.get('Content-Type', '')}\r\n\r\n".encode()
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                header + self._raw
            )
            for part in message.iter_parts():
                if part.get_param("name", header="content-disposition") == "content":
                    name = part.get_filename() or "file"
                    data = part.get_payload(decode=True) or b""
                    file_id = uuid.uuid4().hex[:24]
                    with fake._lock:
                        fake.files[file_id] = (name, part.get_content_type(), data)
                    return self._send(record, 201, fake.file_json(file_id))
            return self._send(record, 400, {"detail": "multipart field 'content' is missing"})
        m = _FILE_ITEM.match(path)
        if m is None or m.group(1) not in fake.files:
            return self._send(record, 404, {"detail": "file not found"})
        if method == "DELETE":
            with fake._lock:
                fake.files.pop(m.group(1), None)
            record.status = 204
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return self._send(record, 200, fake.file_json(m.group(1)))

    def _request_fault(self, record: RecordedRequest, fault: Fault | None, auth: str) -> bool:
        if fault is None:
            return False
        detail = {"detail": fault.message.replace("{authorization}", auth)}
        if fault.kind == RATE_LIMIT:
            self._send(record, 429, {"title": "Too Many Requests", "detail": "slow down"},
                       {"Retry-After": fault.retry_after})  # fmt: skip
            return True
        if fault.kind == SERVER_ERROR:
            self._send(record, 500, {"title": "Internal Server Error", **detail})
            return True
        if fault.kind == UNAVAILABLE:
            self._send(record, 503, {"title": "Service Unavailable", **detail})
            return True
        if fault.kind == GARBAGE:
            record.status = 200
            page = b"<html><body>502 Bad Gateway</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return True
        if fault.kind == SLOW:
            time.sleep(fault.delay_s)
        return False

    def _send(
        self,
        record: RecordedRequest,
        status: int,
        payload: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(payload).encode()
        record.status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_bytes(self, record: RecordedRequest, data: bytes, mime: str) -> None:
        record.status = 200
        self.send_response(200)
        self.send_header("Content-Type", mime)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _prefer_wait(header: str | None) -> float:
    if not header or not header.strip().startswith("wait"):
        return 0.0
    _, _, value = header.partition("=")
    return float(value) if value.strip() else 60.0


def data_url_bytes(url: str) -> bytes:
    """Decode a ``data:...;base64,`` URL a client sent (for assertions on inputs)."""
    return base64.b64decode(url.split(",", 1)[1])
