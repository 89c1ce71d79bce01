"""Fine-tuning throughput: samples/s, tokens/s and peak memory of `datakit finetune` on a synthetic export.

    python benchmarks/finetune.py [--studies 300] [--steps 20] [--batch-size 2] [--model PATH] [--max-pixels N]

1. Makes (once, cached under benchmarks/_work/finetune/) an annotated run from the bundled demo data (ingest,
   retrieve, the offline teacher) and a trl export of --studies rows from it: the demo's traces and images cycled
   under new study ids, so token lengths are those of real datakit traces.
2. Without --model, builds the tiny Qwen2.5-VL of the tests (0.2 M parameters, random weights) and trains on the
   CPU; with --model (a local Qwen2.5-VL / SmolVLM / LLaVA folder) trains that, on CUDA where there is one.
3. Prints a table: steps, samples/s and tokens/s from the trainer's own timing, peak GPU memory
   (torch.cuda.max_memory_allocated) on CUDA, else the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

from _measure import table  # noqa: E402

WORK = HERE / "_work" / "finetune"


def synthetic_export(studies: int) -> Path:
    """A trl export of ``studies`` rows made from the demo run's traces (cached)."""
    from tests.annotate.run_fixture import make_demo_run
    from tests.finetune.export_fixture import make_trl_export

    run = WORK / "run"
    if not (run / "traces.parquet").is_file():
        import datakit.annotate
        from datakit.config import load_config

        make_demo_run(run)
        datakit.annotate.run(run, load_config(), progress=False)
    base = make_trl_export(run, WORK / "demo-trl")
    rows = [json.loads(line) for s in ("train", "val", "test") for line in (base / f"{s}.jsonl").open()]
    dest = WORK / f"trl-{studies}"
    dest.mkdir(parents=True, exist_ok=True)
    with (dest / "train.jsonl").open("w") as fh:
        for i in range(studies):
            fh.write(json.dumps({**rows[i % len(rows)], "study_id": f"s{59000000 + i}"}) + "\n")
    return dest


def tiny_model() -> Path:
    from tests.finetune.tiny_model import build_tiny_qwen25vl

    dest = WORK / "tiny-qwen25vl"
    if not (dest / "model.safetensors").is_file():
        texts = [p["text"] for line in (WORK / "demo-trl" / "train.jsonl").open()
                 for m in json.loads(line)["messages"] for p in m["content"] if p.get("text")]
        build_tiny_qwen25vl(dest, texts)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=300)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--model", help="a local VLM folder (default: the tiny Qwen2.5-VL, on the CPU)")
    ap.add_argument("--max-pixels", type=int, default=None)
    ap.add_argument("--cpu", action="store_true")
    args = ap.parse_args()

    import torch

    from datakit.finetune import FinetuneConfig, finetune

    export = synthetic_export(args.studies)
    model = Path(args.model) if args.model else tiny_model()
    cuda = torch.cuda.is_available() and not args.cpu and args.model is not None
    cfg = FinetuneConfig(
        cpu=not cuda, max_steps=args.steps, batch_size=args.batch_size, grad_accum=args.grad_accum,
        learning_rate=2e-2 if args.model is None else 2e-4, lora_r=8 if args.model is None else 16,
        max_pixels=args.max_pixels or (56 * 56 if args.model is None else 512 * 28 * 28),
        gradient_checkpointing=cuda, save_steps=10_000, resume=False,
    )
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    out = WORK / "out"
    result = finetune(export, model, out, cfg)
    final = [json.loads(line) for line in (out / "metrics.jsonl").open()]
    summary = next(r for r in reversed(final) if "train_runtime" in r)
    tokens = int(max(r.get("num_tokens", 0) for r in final))
    seconds = summary["train_runtime"]
    samples = result.steps * args.batch_size * args.grad_accum
    if cuda:
        peak = f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB GPU (max allocated)"
    else:
        peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MB RSS"
    device = torch.cuda.get_device_name() if cuda else "CPU"
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(table(f"datakit finetune: {model.name} on {device}, {args.studies} studies", [
        ("steps", f"{result.steps} (batch {args.batch_size} x accum {args.grad_accum})"),
        ("train time", f"{seconds:.1f} s"),
        ("samples/s", f"{samples / seconds:.2f}"),
        ("tokens/s", f"{tokens / seconds:,.0f} ({tokens:,} tokens, padding excluded)"),
        ("peak memory", peak),
        ("loss", f"{result.first_loss:.3f} -> {result.last_loss:.3f}"),
        # on a shared machine the process gets only part of the cores: CPU time / wall time says how much
        ("process CPU", f"{usage.ru_utime + usage.ru_stime:.1f} s (whole run, imports and loading included)"),
    ]))


if __name__ == "__main__":
    main()
