"""What a teacher run would send and cost (``datakit annotate --dry-run``): counted from the cache, nothing sent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from datakit.annotate.cache import Cache
from datakit.annotate.request import TeacherRequest, cost_usd
from datakit.config import TeacherConfig


@dataclass(frozen=True)
class Estimate:
    """What a run would send and cost (``datakit annotate --dry-run``); re-asks are not foreseen."""

    requests: int
    cached: int
    to_send: int
    images: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None  # None when no model of the requests to send has a price
    cached_cost_usd: float  # what the cached answers cost when they were bought
    unpriced_models: tuple[str, ...]
    output_basis: str  # where the output estimate comes from


def estimate(
    requests: Sequence[TeacherRequest],
    cache: Cache,
    config: TeacherConfig,
    *,
    transport: Literal["online", "batch"] = "online",
) -> Estimate:
    """Project tokens and cost of the requests not cached yet; sends nothing.

    Input tokens: about 4 characters per token over the request's JSON with images removed, plus
    ``image_input_tokens`` per image (765 by default: what OpenAI bills a 1024×1024 image in high detail; a
    local server's vision encoder may count differently). Output tokens: the mean of the cached answers among
    these requests when there are any, else ``expected_output_tokens``; capped by the request's max tokens.
    """
    answers = cache.get_many(r.key for r in requests)
    todo = [r for r in requests if r.key not in answers]
    if answers:
        mean_out = sum(a.output_tokens for a in answers.values()) / len(answers)
        basis = f"mean of {len(answers)} cached answers"
    else:
        mean_out = float(config.expected_output_tokens)
        basis = "teacher.expected_output_tokens"
    factor = config.batch_price_factor if transport == "batch" else 1.0
    input_tokens = output_tokens = images = 0
    cost = 0.0
    unpriced: set[str] = set()
    for r in todo:
        inp = r.input_tokens_estimate(config.image_input_tokens)
        cap = r.max_output_tokens()
        out = int(round(min(mean_out, cap) if cap else mean_out))
        input_tokens += inp
        output_tokens += out
        images += r.n_images
        price = cost_usd(config.prices, r.model, inp, out, factor=factor)
        if price is None:
            unpriced.add(r.model)
        else:
            cost += price
    return Estimate(
        requests=len(requests),
        cached=len(requests) - len(todo),
        to_send=len(todo),
        images=images,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=None if todo and len(unpriced) == len({r.model for r in todo}) else cost,
        cached_cost_usd=sum(a.cost_usd for a in answers.values()),
        unpriced_models=tuple(sorted(unpriced)),
        output_basis=basis,
    )
