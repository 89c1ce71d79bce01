"""Speed of ``datakit eval``'s scorers on a MIMIC-CXR-test-sized set of synthetic report pairs.

    python benchmarks/evaluate.py                  # 3,858 pairs (the size of MIMIC-CXR's official test split)
    python benchmarks/evaluate.py --n 500 --compare   # also time pycocoevalcap's scorers on the same pairs

Reports come from ``benchmarks/synth.py`` (``make_report``: sentences written for datakit, no real data); each
prediction is another synthetic report, so the scores are low and the figures are about time only. Prints the
seconds of each step (cleaning, BLEU, ROUGE-L, CIDEr, METEOR when Java and pycocoevalcap are there, labelling both
sides, the clinical-efficacy maths) and, with ``--compare``, pycocoevalcap's seconds and the largest difference.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import table  # noqa: E402
from synth import make_report  # noqa: E402

from datakit.evaluate import clinical, meteor, nlg  # noqa: E402
from datakit.reading.labeler import default_labeler  # noqa: E402

MIMIC_TEST = 3_858


def _timed(rows: list[tuple[str, str]], name: str, fn):
    start = time.perf_counter()
    out = fn()
    rows.append((name, f"{time.perf_counter() - start:.2f} s"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=MIMIC_TEST)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare", action="store_true", help="also time pycocoevalcap on the same pairs")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    refs_raw = [make_report(rng)[0] for _ in range(args.n)]
    hyps_raw = [make_report(rng)[0] for _ in range(args.n)]
    rows: list[tuple[str, str]] = [("pairs", f"{args.n:,}")]
    hyps = _timed(rows, "clean (R2Gen mimic_cxr)", lambda: [nlg.clean_mimic_cxr(t) for t in hyps_raw])
    refs = [[nlg.clean_mimic_cxr(t)] for t in refs_raw]
    rows.append(("mean tokens per report", f"{sum(len(h.split()) for h in hyps) / len(hyps):.1f}"))
    ours = {
        "BLEU": _timed(rows, "BLEU-1..4", lambda: nlg.bleu(hyps, refs)[0]),
        "ROUGE_L": _timed(rows, "ROUGE-L", lambda: nlg.rouge_l(hyps, refs)[0]),
        "CIDEr": _timed(rows, "CIDEr", lambda: nlg.cider(hyps, refs)[0]),
    }
    setup = meteor.locate()
    if setup.available:
        ours["METEOR"] = _timed(rows, "METEOR (jar, incl. JVM start)", lambda: meteor.meteor(hyps, refs, setup)[0])
    else:
        rows.append(("METEOR", f"not run: {setup.reason}"))
    labeler = _timed(rows, "labeler build", default_labeler)
    hyp_codes = _timed(rows, "label both sides (impression)", lambda: clinical.label_texts(
        labeler, [clinical.text_for_labels(t) for t in hyps_raw + refs_raw]))
    _timed(rows, "CE maths (2 conventions × 14/5)", lambda: clinical.clinical_efficacy(
        hyp_codes[: args.n], hyp_codes[args.n :]))
    if args.compare:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.rouge.rouge import Rouge

        gts, res = dict(enumerate(refs)), {i: [h] for i, h in enumerate(hyps)}
        theirs = {
            "BLEU": _timed(rows, "pycocoevalcap BLEU", lambda: Bleu(4).compute_score(gts, res, verbose=0)[0]),
            "ROUGE_L": _timed(rows, "pycocoevalcap ROUGE-L", lambda: Rouge().compute_score(gts, res)[0]),
            "CIDEr": _timed(rows, "pycocoevalcap CIDEr", lambda: Cider().compute_score(gts, res)[0]),
        }
        diff = max(
            max(abs(a - b) for a, b in zip(ours["BLEU"], theirs["BLEU"], strict=True)),
            abs(ours["ROUGE_L"] - theirs["ROUGE_L"]),
            abs(ours["CIDEr"] - theirs["CIDEr"]),
        )
        rows.append(("largest difference to pycocoevalcap", f"{diff:.2e}"))
    print(table(f"datakit eval scorers, {args.n:,} synthetic pairs", rows))


if __name__ == "__main__":
    main()
