"""BLEU-1..4, ROUGE-L and CIDEr as the COCO caption scorers compute them, and R2Gen's report cleaners.

The report-generation literature (R2Gen and its successors) scores with ``pycocoevalcap`` (salaniz/pycocoevalcap
1.2: ``bleu/bleu_scorer.py``, ``rouge/rouge.py``, ``cider/cider_scorer.py``) and feeds it the cleaned, lowercased
report with tokens separated by single spaces, without the PTB tokenizer (zhjohnchan/R2Gen
``modules/metrics.py`` and ``modules/tokenizers.py``). The scorers here compute the same numbers, including
those scorers' details: BLEU's 'closest' reference length and its 1e-15 / 1e-9 smoothing, ROUGE-L's beta of 1.2
over tokens split on single spaces, CIDEr's document frequencies over the corpus' references, its clipping and
length penalty. The tests check them against ``pycocoevalcap`` itself.

R2Gen's own ``compute_scores`` reports BLEU, METEOR and ROUGE-L only; CIDEr is ``pycocoevalcap``'s ``Cider`` as
later report generators score it (wang-zhanyu/R2GenGPT). That scorer already carries CIDEr-D's clipping and
Gaussian length penalty; what sets it apart from the ``CiderD`` of the captioning codebases is that its document
frequencies come from the evaluated references, not from a precomputed table.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence

Ngrams = Counter[tuple[str, ...]]

# --- R2Gen's report cleaners (modules/tokenizers.py clean_report_iu_xray / clean_report_mimic_cxr) ------------------
_NUMBERING = [("1. ", ""), (". 2. ", ". "), (". 3. ", ". "), (". 4. ", ". "), (". 5. ", ". "),
              (" 2. ", ". "), (" 3. ", ". "), (" 4. ", ". "), (" 5. ", ". ")]
_IU_STEPS = [("..", ".")] * 3 + _NUMBERING
_MIMIC_STEPS = [("\n", " ")] + [("__", "_")] * 7 + [("  ", " ")] * 6 + [("..", ".")] * 8 + _NUMBERING
# R2Gen's character class is '[.,?;*!%^&_+():-\[\]{}]', in which ':-\[' is the range ':' .. '[' (it also takes
# ; < = > ? @ and A-Z; the text is lowercased first, so A-Z never reaches it). Written out here explicitly.
_SENT_PUNCT = re.compile(r"[.,?;*!%^&_+()\[\]{}:<=>@]")
_SENT_DROP = str.maketrans("", "", "\"/\\'")


def _r2gen_clean(report: str, steps: list[tuple[str, str]]) -> str:
    text = report
    for old, new in steps:
        text = text.replace(old, new)
    sentences = text.strip().lower().split(". ")
    # R2Gen keeps every sentence, even one left empty (its filter compares a string with [] and never drops)
    cleaned = [_SENT_PUNCT.sub("", s.translate(_SENT_DROP).strip().lower()) for s in sentences]
    joined = " . ".join(cleaned) + " ."
    # R2Gen scores the decoded token sequence: whitespace-split tokens joined by single spaces
    return " ".join(joined.split())


def clean_mimic_cxr(report: str) -> str:
    """R2Gen's MIMIC-CXR cleaner: lowercase, drop numbering and punctuation, sentences joined by ' . '."""
    return _r2gen_clean(report, _MIMIC_STEPS)


def clean_iu_xray(report: str) -> str:
    """R2Gen's IU-Xray cleaner (no newline or underscore folding; otherwise as the MIMIC-CXR one)."""
    return _r2gen_clean(report, _IU_STEPS)


CLEANERS: dict[str, tuple[Callable[[str], str], str]] = {
    "mimic_cxr": (clean_mimic_cxr, "R2Gen clean_report_mimic_cxr, then whitespace tokens joined by single spaces"),
    "iu_xray": (clean_iu_xray, "R2Gen clean_report_iu_xray, then whitespace tokens joined by single spaces"),
    "none": (lambda text: text, "none: the text exactly as given"),
}


# --- BLEU (bleu_scorer.py with option='closest') ---------------------------------------------------------------
_TINY = 1e-15  # numerator smoothing: a zero match count still gives a (tiny) non-zero precision
_SMALL = 1e-9  # denominator smoothing: no division by zero


def ngram_counts(words: Sequence[str], n: int) -> Ngrams:
    """Counts of every 1..n-gram of a token list."""
    counts: Ngrams = Counter()
    for k in range(1, n + 1):
        for i in range(len(words) - k + 1):
            counts[tuple(words[i : i + k])] += 1
    return counts


def _bleu_from(correct: list[float], guess: list[float], testlen: float, reflen: float, n: int) -> list[float]:
    scores = []
    product = 1.0
    for k in range(n):
        product *= (correct[k] + _TINY) / (guess[k] + _SMALL)
        scores.append(product ** (1.0 / (k + 1)))
    ratio = (testlen + _TINY) / (reflen + _SMALL)
    if ratio < 1:
        scores = [s * math.exp(1 - 1 / ratio) for s in scores]
    return scores


def bleu(hyps: Sequence[str], refs: Sequence[Sequence[str]], n: int = 4) -> tuple[list[float], list[list[float]]]:
    """Corpus BLEU-1..n and the per-example BLEU-1..n lists (one list per order, as pycocoevalcap returns)."""
    totals_c, totals_g = [0] * n, [0] * n
    total_test = total_ref = 0
    per_example: list[list[float]] = [[] for _ in range(n)]
    for hyp, rs in zip(hyps, refs, strict=True):
        words = hyp.split()
        testlen = len(words)
        ref_lengths = []
        max_ref: Ngrams = Counter()
        for r in rs:
            r_words = r.split()
            ref_lengths.append(len(r_words))
            for gram, c in ngram_counts(r_words, n).items():
                max_ref[gram] = max(max_ref[gram], c)
        # 'closest': the reference length nearest the hypothesis length, the shorter one on a tie
        reflen = min((abs(length - testlen), length) for length in ref_lengths)[1]
        guess = [max(0, testlen - k) for k in range(n)]
        correct = [0] * n
        for gram, c in ngram_counts(words, n).items():
            correct[len(gram) - 1] += min(max_ref.get(gram, 0), c)
        for k, s in enumerate(_bleu_from(correct, guess, testlen, reflen, n)):
            per_example[k].append(s)
        total_test += testlen
        total_ref += reflen
        for k in range(n):
            totals_c[k] += correct[k]
            totals_g[k] += guess[k]
    return _bleu_from(totals_c, totals_g, total_test, total_ref, n), per_example


# --- ROUGE-L (rouge.py) ------------------------------------------------------------------------------------------
ROUGE_BETA = 1.2


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists (one DP row at a time)."""
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        row = [0]
        for j, y in enumerate(b, 1):
            row.append(prev[j - 1] + 1 if x == y else max(prev[j], row[j - 1]))
        prev = row
    return prev[-1]


def rouge_l_one(hyp: str, refs: Sequence[str], beta: float = ROUGE_BETA) -> float:
    """ROUGE-L F of one hypothesis: best precision and best recall over the references, combined."""
    # split on single spaces, not on whitespace: that is what the COCO scorer does
    cand = hyp.split(" ")
    precisions, recalls = [], []
    for ref in refs:
        tokens = ref.split(" ")
        lcs = lcs_length(tokens, cand)
        precisions.append(lcs / float(len(cand)))
        recalls.append(lcs / float(len(tokens)))
    p, r = max(precisions), max(recalls)
    if p == 0 or r == 0:
        return 0.0
    return ((1 + beta**2) * p * r) / float(r + beta**2 * p)


def rouge_l(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> tuple[float, list[float]]:
    """Mean ROUGE-L over the examples, and each example's."""
    scores = [rouge_l_one(h, rs) for h, rs in zip(hyps, refs, strict=True)]
    return (math.fsum(scores) / len(scores) if scores else 0.0), scores


# --- CIDEr (cider_scorer.py) -------------------------------------------------------------------------------------
CIDER_N = 4
CIDER_SIGMA = 6.0


def _tfidf(counts: Ngrams, df: Counter, log_n: float, n: int) -> tuple[list[dict], list[float], int]:
    vec: list[dict] = [{} for _ in range(n)]
    norm = [0.0] * n
    length = 0
    for gram, tf in counts.items():
        k = len(gram) - 1
        weight = float(tf) * (log_n - math.log(max(1.0, df[gram])))
        vec[k][gram] = weight
        norm[k] += weight**2
        # the COCO scorer takes the length from the bigram counts (its `n == 1`); kept to give its numbers
        if k == 1:
            length += tf
    return vec, [math.sqrt(v) for v in norm], length


def _similarity(hyp: tuple, ref: tuple, n: int, sigma: float) -> list[float]:
    (v_h, norm_h, len_h), (v_r, norm_r, len_r) = hyp, ref
    delta = float(len_h - len_r)
    out = []
    for k in range(n):
        val = 0.0
        for gram, w in v_h[k].items():
            w_ref = v_r[k].get(gram, 0.0)
            val += min(w, w_ref) * w_ref  # clipped, as the COCO scorer does
        if norm_h[k] != 0 and norm_r[k] != 0:
            val /= norm_h[k] * norm_r[k]
        out.append(val * math.e ** (-(delta**2) / (2 * sigma**2)))
    return out


def cider(hyps: Sequence[str], refs: Sequence[Sequence[str]], n: int = CIDER_N,
          sigma: float = CIDER_SIGMA) -> tuple[float, list[float]]:
    """Corpus CIDEr (mean of the examples' scores) with document frequencies over this corpus' references."""
    hyp_counts = [ngram_counts(h.split(), n) for h in hyps]
    ref_counts = [[ngram_counts(r.split(), n) for r in rs] for rs in refs]
    df: Counter = Counter()
    for rs in ref_counts:
        df.update({gram for counts in rs for gram in counts})
    log_n = math.log(float(len(ref_counts))) if ref_counts else 0.0
    scores = []
    for hc, rs in zip(hyp_counts, ref_counts, strict=True):
        h = _tfidf(hc, df, log_n, n)
        total = [0.0] * n
        for rc in rs:
            for k, v in enumerate(_similarity(h, _tfidf(rc, df, log_n, n), n, sigma)):
                total[k] += v
        scores.append(sum(total) / n / len(rs) * 10.0)
    return (math.fsum(scores) / len(scores) if scores else 0.0), scores
