"""What the teacher's transport takes in and gives back: requests, results, keys, token estimates.

A :class:`TeacherRequest` holds the *fully rendered* ``/v1/chat/completions`` body. Its cache key is the
``b2:`` hash of that body in canonical JSON, with every image data URL replaced by the digest of the image's
bytes: so the key changes when anything that is sent changes (a word of the prompt, a generation
parameter, the schema, an image) and only then. Images are never stored in the cache; ``request_json`` holds
their digests, which equal :func:`datakit.hashing.file_digest` of the image files.

Nothing here talks to the network or imports ``openai``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from datakit.hashing import canonical_json, content_hash

# A data URL as the lead's prompts build them: data:<mime>;base64,<payload>
_DATA_URL = re.compile(r"^data:([^;,]*)((?:;[^;,]*)*);base64,", re.IGNORECASE)

# Token estimate before sending (for --dry-run and the tokens-per-minute limiter): about four characters of
# the request's JSON per token (OpenAI's rule of thumb for English), images counted separately.
CHARS_PER_TOKEN = 4


def image_digest_url(url: str) -> tuple[str, bool]:
    """Replace a base64 data URL by ``data:<mime>;digest=b2:…`` (the digest of the decoded bytes)."""
    match = _DATA_URL.match(url)
    if match is None:
        return url, False
    payload = url[match.end() :]
    try:
        raw = binascii.a2b_base64(payload)
    except binascii.Error:  # not valid base64: hash the text, so the key still follows the content
        raw = payload.encode("utf-8")
    digest = "b2:" + hashlib.blake2b(raw, digest_size=16).hexdigest()
    return f"data:{match.group(1)};digest={digest}", True


def strip_images(obj: Any) -> tuple[Any, int]:
    """A copy of ``obj`` with every data-URL string replaced by its digest form, and the number replaced."""
    if isinstance(obj, str):
        if obj.startswith(("data:", "DATA:", "Data:")):
            new, replaced = image_digest_url(obj)
            return new, int(replaced)
        return obj, 0
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        count = 0
        for k, v in obj.items():
            out[k], n = strip_images(v)
            count += n
        return out, count
    if isinstance(obj, (list, tuple)):
        items = []
        count = 0
        for v in obj:
            new, n = strip_images(v)
            items.append(new)
            count += n
        return items, count
    return obj, 0


def _fits_as_is(head: bytes, max_side: int) -> bool:
    """The first 26 bytes are those of an 8-bit grey or RGB PNG no larger than ``max_side``: sent as it is."""
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return False
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    return max(width, height) <= max_side and head[24] == 8 and head[25] in (0, 2)


@dataclass(frozen=True)
class LazyImage:
    """An image file sent as a PNG data URL whose longest side is at most ``max_side`` pixels.

    Its placeholder, ``data:image/png;digest=b2:…``, hashes the file's digest together with ``max_side``: the
    bytes sent are a deterministic function of both, so the placeholder stands for them in the cache key without
    the image being read, resized or encoded.
    """

    path: str
    file_digest: str
    max_side: int

    @property
    def placeholder(self) -> str:
        """The URL written into the body (and into the cache's request_json)."""
        return f"data:image/png;digest={content_hash([self.file_digest, self.max_side])}"

    def data_url(self) -> str:
        """Read, downscale and encode the image."""
        with open(self.path, "rb") as fh:
            head = fh.read(26)
            if _fits_as_is(head, self.max_side):  # what the check below finds, without PIL (a 0.1 ms saving)
                return "data:image/png;base64," + base64.b64encode(head + fh.read()).decode("ascii")
        from PIL import Image  # only for an image that must be converted or downscaled

        with Image.open(self.path) as im:
            if im.format == "PNG" and max(im.size) <= self.max_side and im.mode in ("L", "RGB"):
                # already a PNG that fits: send the file's own bytes (no decode, no re-encode)
                with open(self.path, "rb") as fh:
                    return "data:image/png;base64," + base64.b64encode(fh.read()).decode("ascii")
            im = im.convert("L") if im.mode not in ("L", "RGB") else im
            if max(im.size) > self.max_side:
                scale = self.max_side / max(im.size)
                im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                               Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            im.save(buf, format="PNG", optimize=False)
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass(frozen=True)
class TeacherRequest:
    """One fully rendered chat-completion request for one study.

    ``body`` is sent as it is: model, messages (images as data URLs), every generation parameter and the
    ``response_format``. ``template_id``, ``template_sha`` and ``schema_id`` are provenance, stored with it.
    """

    study_id: str
    body: dict[str, Any]
    template_id: str
    template_sha: str
    schema_id: str
    # Images attached lazily: the body holds a placeholder URL (see :class:`LazyImage`) that is replaced by the
    # real data URL only when the request is sent, so a fully cached run never reads or encodes an image.
    lazy_images: tuple[LazyImage, ...] = ()

    def wire_body(self) -> dict[str, Any]:
        """The body as it goes on the wire: lazy image placeholders replaced by base64 data URLs."""
        if not self.lazy_images:
            return self.body
        urls = {img.placeholder: img.data_url() for img in self.lazy_images}

        def swap(obj: Any) -> Any:
            if isinstance(obj, str):
                return urls.get(obj, obj)
            if isinstance(obj, Mapping):
                return {k: swap(v) for k, v in obj.items()}
            if isinstance(obj, list):
                return [swap(v) for v in obj]
            return obj

        return {**self.body, "messages": swap(self.body.get("messages", []))}

    @cached_property
    def _stripped(self) -> tuple[str, int]:
        # Images can only sit in the messages; the rest of the body (the schema above all) is left unwalked.
        messages, n_images = strip_images(self.body.get("messages", []))
        return canonical_json({**self.body, "messages": messages}), n_images

    @property
    def key(self) -> str:
        """The cache key: ``b2:`` hash of the canonical body, images replaced by their digests."""
        return self._key

    @cached_property
    def _key(self) -> str:
        return content_hash(self._stripped[0])

    @property
    def request_json(self) -> str:
        """The canonical body as stored in the cache (images as digests only)."""
        return self._stripped[0]

    @property
    def n_images(self) -> int:
        """Number of images in the body (data URLs and lazy images)."""
        return self._stripped[1] + len(self.lazy_images)

    @property
    def model(self) -> str:
        """The model the body asks for."""
        return str(self.body.get("model", ""))

    def max_output_tokens(self) -> int | None:
        """The output cap the body sets, if any."""
        for name in ("max_completion_tokens", "max_tokens"):
            value = self.body.get(name)
            if isinstance(value, int):
                return value
        return None

    def input_tokens_estimate(self, image_tokens: int) -> int:
        """Input tokens before sending: characters of the JSON (images removed) / 4, plus each image."""
        return len(self._stripped[0]) // CHARS_PER_TOKEN + self.n_images * image_tokens

    def options(self) -> dict[str, Any]:
        """The generation parameters: the body without model, messages and response_format."""
        return {k: v for k, v in self.body.items() if k not in ("model", "messages", "response_format")}

    def reask(self, reply_text: str, prompt: str) -> TeacherRequest:
        """The follow-up request after an unusable reply: these messages + the reply + ``prompt`` (what was wrong)."""
        messages = list(self.body.get("messages", []))
        messages.append({"role": "assistant", "content": reply_text})
        messages.append({"role": "user", "content": prompt})
        return TeacherRequest(
            study_id=self.study_id,
            body={**self.body, "messages": messages},
            template_id=self.template_id,
            template_sha=self.template_sha,
            schema_id=self.schema_id,
            lazy_images=self.lazy_images,
        )

    def __repr__(self) -> str:  # the body holds whole images: keep reprs short
        return f"TeacherRequest(study_id={self.study_id!r}, key={self.key!r}, model={self.model!r})"


@dataclass
class TeacherResult:
    """What became of one request (and its re-asks).

    ``key`` is the original request's key (what a trace row records); ``keys`` every key involved, re-asks
    included. ``usage``/``cost_usd`` add up every call of the chain; ``cached`` is true when no request was
    sent for it in this run; ``attempts`` counts the HTTP attempts this run made for it (retries and re-asks
    included). ``error_code`` is one of: ``parse_error``, a bad finish reason (``length``, ``content_filter``,
    …), ``refusal``, ``bad_request``, ``rate_limited``, ``server_error``, ``timeout``, ``http_error``,
    ``batch_failed``, ``batch_cancelled``.
    """

    study_id: str
    key: str
    ok: bool
    text: str | None = None
    parsed: Any = None
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=lambda: {"input_tokens": 0, "output_tokens": 0})
    cost_usd: float = 0.0
    cached: bool = True
    attempts: int = 0
    error_code: str | None = None
    error: str | None = None
    keys: list[str] = field(default_factory=list)


def response_format_for(
    schema: Mapping[str, Any],
    mode: Literal["json_schema", "json_object"] = "json_schema",
    *,
    name: str | None = None,
) -> dict[str, Any]:
    """The ``response_format`` for a JSON Schema: strict ``json_schema`` where the server supports it.

    ``json_object`` only promises *some* JSON object (the schema is then checked by ``parse`` alone), and
    OpenAI refuses it unless the word "JSON" appears in the messages: say so in the prompt.
    """
    if mode == "json_object":
        return {"type": "json_object"}
    if mode != "json_schema":
        raise ValueError(f"structured output mode must be json_schema or json_object, not {mode!r}")
    raw = name or str(schema.get("title") or schema.get("$id") or "output")
    # OpenAI allows a-z, A-Z, 0-9, _ and - in the name, at most 64 characters.
    stem = raw.rsplit("/", 1)[-1].removesuffix(".json")
    clean = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:64] or "output"
    return {"type": "json_schema", "json_schema": {"name": clean, "schema": dict(schema), "strict": True}}


def cost_usd(
    prices: Mapping[str, Any], model: str, input_tokens: int, output_tokens: int, *, factor: float = 1.0
) -> float | None:
    """Cost of one call (USD per million tokens): ``prices`` (the run's) first, then datakit's dated table.

    ``None`` when neither has the model.
    """
    from datakit.annotate.prices import lookup

    found = lookup(prices, model)
    if found is None:
        return None
    price = found[0]
    return factor * (input_tokens * price.input_per_mtok + output_tokens * price.output_per_mtok) / 1e6
