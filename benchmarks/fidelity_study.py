"""Fidelity study with a protocol that cannot fool itself: tune on one set, choose, then test once.

    python benchmarks/fidelity_study.py run --set tune            # every candidate on the tune clips
    python benchmarks/fidelity_study.py choose                    # the fixed rule picks on tune rows only
    python benchmarks/fidelity_study.py run --set test            # baselines + the choice, on test, once
    python benchmarks/fidelity_study.py report                    # markdown tables (tune and test columns)

Protocol (fixed before any test clip was transcribed by a compressed model):

* ``benchmarks/clips/tune`` (28 clips) is the only set any choice looks at; ``benchmarks/clips/test`` (48
  clips: other sentences, held-out voices and noise/speed/pitch variants) is transcribed once per row
  of the final grid, and nothing is re-chosen after that.
* Compression is data-free: no clip is ever used to compute a compression.
* The choice rule (``choose``) is written below, not picked after looking: for target (a) the candidate
  method on ``encoder-fc1`` with the lowest mean tune WER over 10/20/30 %; for target (b) the
  candidate setting with the most parameters removed whose tune WER is within 3 points of the
  uncompressed model's tune WER (none: target (b) is reported as missed).
* Rows are appended to ``benchmarks/study/<set>.jsonl`` (with every hypothesis), so an interrupted run
  resumes where it stopped.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from prunelab import CompressionConfig, compress, load_model, wer  # noqa: E402
from prunelab.compression import LayerCache  # noqa: E402
from prunelab.speech.data import load_eval_set  # noqa: E402
from prunelab.speech.transcribe import transcribe_batch  # noqa: E402

OUT = HERE / "study"
SETS = {name: HERE / "clips" / name for name in ("tune", "test", "test2", "test3", "test4")}
SPARSITIES = (0.1, 0.2, 0.3)


def job(method: str, preset: str, sparsity: float, units: str = "channels", allocate: str = "uniform",
        vocabulary: str | None = None, **options) -> dict:
    label = f"{method}{'(' + ','.join(f'{k}={v}' for k, v in sorted(options.items())) + ')' if options else ''}" \
            f" {preset}/{units} {sparsity:.0%}" + ("" if allocate == "uniform" else f" alloc={allocate}")
    if vocabulary and sparsity == 0:
        label = f"vocabulary={vocabulary} only"
    elif vocabulary:
        label += f" vocab={vocabulary}"
    return dict(label=label, method=method, preset=preset, sparsity=sparsity, units=units, options=options,
                allocate=allocate, vocabulary=vocabulary)


UNCOMPRESSED = dict(label="uncompressed", method="none", preset="-", sparsity=0.0, units="-", options={})
"""The row of the model as loaded (every grid's first)."""


# Target (a): methods on the encoder FFN neurons. kmeans and magnitude are the paper's comparison.
CANDIDATES_A = ["kmeans", "magnitude", "representative", "predictive"]
# Target (b): settings that remove more of the whole model (foldable units beyond the encoder FFN).
CANDIDATES_B = [("lowrank-qk", "decoder-self-qk", 0.5)]  # the cheapest unit per parameter in the research (NOTES)


# Round 2 (session 4, written before any of its rows ran; test rows of round 1 had been seen, so round 2 only
# adds candidates and a rule fixed here): allocation that follows the model's output (allocate="output",
# prunelab/compression/output_allocation.py) against uniform and the per-layer weight-distortion "auto", and
# one more target (b) attempt: predictive on every FFN (encoder and decoder) at 15 % = 5.2 % of all parameters,
# output-allocated. Rule (choose2): "output" replaces "uniform" in `recommended` only if its mean tune WER over
# 10/20/30 % is lower than uniform predictive's; target (b) as in round 1 over all tune rows. Test runs once per
# round-2 row after choose2, whatever the choice (they are the comparison the issue asks for).
ROUND2 = [job("predictive", "encoder-fc1", s, "foldable", "output") for s in SPARSITIES] + [
    job("predictive", "encoder-fc1", 0.2, "foldable", "auto"),
    job("predictive", "fc1", 0.15, "foldable", "output"),
    # added after round 2's first row had run (a target (b) candidate, unrelated to that row): every attention's
    # query/key dims at 40 % (5.2 % of all parameters), output-allocated across the 18 attention modules
    job("lowrank-qk", "attention-qk", 0.4, "foldable", "output")]


# Round 3 (written before its rows ran): the compensation screen (benchmarks/study/compensation_screen.txt, tune
# clips, teacher-forced KL) ranked kmeans-fold with the stand-in ridge refit of fc2 (mu 3) first (0.49 vs predictive
# 0.75, k-means 0.86). Rule (choose3): it replaces predictive as `recommended` if its mean tune WER over
# 10/20/30 % on encoder-fc1 is lower than predictive's; its test rows run once afterwards whatever the outcome.
ROUND3 = [job("kmeans-fold", "encoder-fc1", s, "foldable", ridge=3.0) for s in SPARSITIES]


# Round 4 (session 5, written before any of its rows ran). Test had been looked at in rounds 1-3, so round 4
# reports on a FRESH set, `benchmarks/clips/test2` (48 clips, new sentences, a new voice and new variants; made by
# `make_clips.py test2` and transcribed by no model before this round's choice). Candidates on tune:
# * target (a): predictive with the per-layer weight-distortion allocation ("auto") at 10 and 30 % (20 % ran in
#   round 2: 33.4 vs uniform 36.1). Rule (choose4): "auto" replaces "uniform" in `recommended` if its mean tune WER
#   over 10/20/30 % is lower than uniform predictive's.
# * target (b): the decoder vocabulary trimmed to one family of scripts (prunelab/compression/vocabulary.py: decided
#   from the tokenizer, no audio), alone and with the two cheapest units of rounds 1-3. Rule: as in round 1, the
#   tune row (any round) with the most params_removed whose tune WER is within 3 points of the uncompressed one;
#   and, reported beside it, the same rule over rows WITHOUT vocabulary trimming (clustering alone).
# On test2, once, in this order (most important first, in case the session's time runs out): the uncompressed model,
# the (b) choice, the clustering-only (b) choice, the two vocabulary-only rows, then kmeans / magnitude / the
# chosen `recommended` at 10/20/30 % on encoder-fc1 (target (a)). Nothing is re-chosen after test2.
ROUND4 = [job("predictive", "encoder-fc1", s, "foldable", "auto") for s in (0.1, 0.3)] + [
    job("kmeans", "uniform", 0.0, vocabulary="latin"),
    job("kmeans", "uniform", 0.0, vocabulary="ascii"),
    job("lowrank-qk", "decoder-self-qk", 0.5, "foldable", vocabulary="latin"),
    job("lowrank-qk", "decoder-self-qk", 0.5, "foldable", vocabulary="ascii"),
    job("predictive", "encoder-fc1", 0.1, "foldable", vocabulary="ascii")]


# Round 5 (session 6, written before any of its rows ran). Target (b) by compression alone is still missed (best:
# lowrank-qk on decoder self-attention q/k at 50 %, 2.17 %). The query/key dims of the other attentions were never
# measured with WER (cross-attention at 50 %: proxy only, KL 0.52, lower than decoder self-attention's 0.61), and
# all of them together at 40-50 % is the only foldable unit kind large enough to reach 5 % (18 attentions x 2 x
# 512 x 256 = 6.5 % at 50 %). Candidates on tune: lowrank-qk on decoder cross-attention at 50 %, on encoder
# self-attention at 25 and 50 %, on both decoder attentions at 50 % (4.34 %), and on every attention at 40 and 50 %
# (uniform: round 2's 40 % row was output-allocated and broke, 278.7). Rule (choose5): as in round 4, the tune row
# (any round) with the most params_removed whose tune WER is within 3 points of the uncompressed one, and the same
# over rows without vocabulary trimming. If that clustering-only choice removes >= 5 % of all parameters, it becomes
# what `recommended` compresses without a preset (a later commit, on tune alone); otherwise `recommended` is
# unchanged and target (b) is reported missed with the choice's test3 WER. Test3 (`benchmarks/clips/test3`, 48 new
# clips made by `make_clips.py test3` after this round's tune rows, before any model transcribed it) runs once, in
# this order: the uncompressed model, the two choices, then every round-5 row (the measurement the issue asks for,
# reported as it comes out). Nothing is re-chosen after test3.
ROUND5 = [job("lowrank-qk", preset, s, "foldable") for preset, s in (
    ("decoder-cross-qk", 0.5), ("encoder-qk", 0.5), ("attention-qk", 0.4), ("decoder-qk", 0.5), ("encoder-qk", 0.25),
    ("attention-qk", 0.5))]


# Round 6 (session 8). Written after two probes on tune (benchmarks/probe_decoder_units.py, WER_STUDY.md "After round
# 5 (session 8)") had measured these rows with the same library code, and before any of them ran here or any model
# transcribed test4. No probe found a row >= 5 % within 3 points, so target (b) cannot be met in this round; it asks
# whether the per-layer "auto" allocation of the query/key fold, better on tune at the same size (14.8 vs 18.4),
# holds on clips nobody has seen, and measures the decoder FFN's one row within budget on tune. Candidates on tune:
# lowrank-qk on decoder self-attention q/k at 50 % with auto allocation; predictive on the decoder FFN neurons at
# 10 % with auto allocation. Rule (choose6): as in rounds 4-5, the tune row (any round) with the most params_removed
# within 3 points of the uncompressed tune WER, over all rows and over rows without vocabulary trimming -- ties in
# params_removed broken by the lower tune WER (new: auto and uniform remove exactly the same parameters). If the
# clustering-only choice is the auto row, the README's target-(b) command gains `--allocate auto` (a later commit);
# `recommended` changes only for a clustering-only choice >= 5 % (impossible here). Test4
# (`benchmarks/clips/test4`, 48 new clips made by `make_clips.py test4` after choose6) runs once, in this order:
# the uncompressed model, the two choices, round 1's uniform query/key row (the comparison), then every round-6 row.
# Nothing is re-chosen after test4.
ROUND6 = [job("lowrank-qk", "decoder-self-qk", 0.5, "foldable", "auto"),
          job("predictive", "decoder-fc1", 0.1, "foldable", "auto")]


def choice6_jobs() -> list[dict]:
    """Round 6's test4 grid, in the order it runs (see ROUND6), from choice6.json."""
    jobs, _ = uncompressed_and_b_choices("choice6.json")
    return list({j["label"]: j for j in jobs + [job("lowrank-qk", "decoder-self-qk", 0.5, "foldable")] + ROUND6}.values())


def choice5_jobs() -> list[dict]:
    """Round 5's test3 grid, in the order it runs (see ROUND5), from choice5.json."""
    jobs, _ = uncompressed_and_b_choices("choice5.json")
    return list({j["label"]: j for j in jobs + ROUND5}.values())


def uncompressed_and_b_choices(name: str) -> tuple[list[dict], dict]:
    """The head of a test grid: the uncompressed row, then the (b) choice and the clustering-only (b) choice of
    the choice file ``name`` (those it made); and the whole choice."""
    choice = json.loads((OUT / name).read_text())
    return [UNCOMPRESSED] + [job(**choice[key]["job"]) for key in ("b", "b_clustering_only") if choice.get(key)], choice


def choice4_jobs() -> list[dict]:
    """Round 4's test2 grid, in the order it runs (see ROUND4), from choice4.json."""
    jobs, choice = uncompressed_and_b_choices("choice4.json")
    jobs += [job("kmeans", "uniform", 0.0, vocabulary=v) for v in ("latin", "ascii")]
    for s in SPARSITIES:
        jobs += [job("predictive", "encoder-fc1", s, "foldable", choice["allocate"]),
                 job("kmeans", "encoder-fc1", s), job("magnitude", "encoder-fc1", s)]
    return list({j["label"]: j for j in jobs}.values())


def tune_grid() -> list[dict]:
    jobs = [job(m, "encoder-fc1", s, "foldable" if m == "predictive" else "channels")
            for s in SPARSITIES for m in CANDIDATES_A]
    jobs += [job(m, p, s, "foldable") for m, p, s in CANDIDATES_B]
    return list({j["label"]: j for j in jobs}.values())


def test_grid(baselines_only: bool = False, choice_only: bool = False) -> list[dict]:
    """The final grid: the paper's baselines (fixed whatever the choice, so they may run first) and the choice."""
    baselines = [job(m, "encoder-fc1", s) for s in SPARSITIES for m in ("kmeans", "magnitude")]
    if baselines_only:
        return baselines
    choice = json.loads((OUT / "choice.json").read_text())
    jobs = ([] if choice_only else baselines) + [job(choice["a"]["method"], "encoder-fc1", s, choice["a"]["units"]) for s in SPARSITIES]
    if choice.get("b"):
        b = choice["b"]
        jobs.append(job(b["method"], b["preset"], b["sparsity"], b["units"], **b.get("options", {})))
    return list({j["label"]: j for j in jobs}.values())


def load_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def cmd_run(args: argparse.Namespace) -> None:
    OUT.mkdir(exist_ok=True)
    out = OUT / f"{args.set}{'-' + args.part if args.part else ''}.jsonl"
    done = {r["label"] for r in rows_of(args.set)}
    utts = load_eval_set(SETS[args.set])
    refs = [u.text for u in utts]
    model = load_model()
    cache = LayerCache(max_bytes=1024 * 2**20)
    grid = [] if args.choice_only else [UNCOMPRESSED]
    if args.round6:
        grid = grid + ROUND6 if args.set == "tune" else choice6_jobs()
    elif args.round5:
        grid = grid + ROUND5 if args.set == "tune" else choice5_jobs()
    elif args.round4:
        grid = ROUND4 if args.set == "tune" else choice4_jobs()
    elif args.round3:
        grid += ROUND3
    elif args.round2:
        grid += ([] if args.set == "tune" else [job(**{k: v for k, v in json.loads(  # round 1's target (b) row first
            (OUT / "choice.json").read_text())["b"].items() if k in ("method", "preset", "sparsity", "units")})]) + ROUND2
    else:
        grid += tune_grid() if args.set == "tune" else test_grid(args.baselines_only, args.choice_only)
    if getattr(args, "only_a", False):
        grid = [j for j in grid if j["preset"] in ("-", "encoder-fc1") and j["sparsity"] in (0.0, *SPARSITIES)
                and j["method"] in ("none", *CANDIDATES_A)]
    todo = [j for j in grid if j["label"] not in done and j["label"] not in (args.skip or [])]
    print(f"{len(utts)} {args.set} clips; {len(todo)} of {len(grid)} rows to run -> {out}", flush=True)
    for n, j in enumerate(todo, 1):
        t0 = time.perf_counter()
        if j["method"] == "none":
            small, removed, sparsity = model, 0.0, 0.0
        else:
            config = CompressionConfig(method=j["method"], sparsity=j["sparsity"], preset=j["preset"],
                                       units=j["units"], options=j["options"], allocate=j.get("allocate", "uniform"),
                                       vocabulary=j.get("vocabulary"))
            small = compress(model, config, cache=cache)
            removed, sparsity = small.compression["params_removed"], small.compression["sparsity"]
        t1 = time.perf_counter()
        hyps = transcribe_batch(small, [u.audio for u in utts])
        row = dict(j, set=args.set, wer=wer(refs, hyps), params_removed=removed, model_sparsity=sparsity,
                   clips=len(utts), compress_s=round(t1 - t0, 1), transcribe_s=round(time.perf_counter() - t1, 1),
                   ids=[u.id for u in utts], hyps=hyps)
        with out.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        print(f"({n}/{len(todo)}) {j['label']:<44s} WER {row['wer']:7.2%}  removed {removed:6.2%}  "
              f"({row['compress_s']:.0f} s + {row['transcribe_s']:.0f} s)", flush=True)


def rows_of(which: str) -> list[dict]:
    """Every row of a set, from ``<set>.jsonl`` and its parts ``<set>-<part>.jsonl`` (runs made side by side)."""
    return [r for path in sorted(OUT.glob(f"{which}*.jsonl")) for r in load_rows(path) if r.get("set") == which]


def mean_tune_wer(rows: dict[str, dict], jobs: list[dict]) -> float | None:
    """Mean WER of ``jobs``' rows, or None while one of them has not run."""
    cells = [rows.get(j["label"]) for j in jobs]
    return sum(c["wer"] for c in cells) / len(cells) if all(cells) else None


def within_3_points(rows: dict[str, dict]) -> list[dict]:
    """The compressed rows whose WER is within 3 points of the uncompressed row's (target (b))."""
    base = rows["uncompressed"]["wer"]
    return [r for r in rows.values() if r["method"] != "none" and r["wer"] <= base + 0.03]


def predictive_means(rows: dict[str, dict], allocations: tuple[str, ...]) -> dict[str, float]:
    """Mean tune WER of predictive on encoder-fc1 over 10/20/30 % per allocation (those whose rows have all run)."""
    return {a: m for a in allocations if (m := mean_tune_wer(
        rows, [job("predictive", "encoder-fc1", s, "foldable", a) for s in SPARSITIES])) is not None}


def most_removed(candidates: list[dict], tie_break: bool = False) -> dict | None:
    """The row with the most params_removed among ``candidates`` (label, removed, tune WER, its job), or None;
    ``tie_break``: among rows removing the same parameters, the one with the lower WER (round 6 on)."""
    key = (lambda r: (round(r["params_removed"], 12), -r["wer"])) if tie_break else (lambda r: r["params_removed"])
    best = max(candidates, key=key, default=None)
    if best is None:
        return None
    keys = ("method", "preset", "sparsity", "units", "allocate", "vocabulary")
    spec = {k: best.get(k, "uniform" if k == "allocate" else None) for k in keys}
    return {"label": best["label"], "params_removed": best["params_removed"], "tune_wer": best["wer"],
            "job": dict(spec, **best.get("options", {}))}


def write_choice(name: str, choice: dict) -> None:
    (OUT / name).write_text(json.dumps(choice, indent=2) + "\n")
    print(json.dumps(choice, indent=2))


def cmd_choose(_: argparse.Namespace) -> None:
    rows = {r["label"]: r for r in rows_of("tune")}
    base = rows["uncompressed"]["wer"]
    mean_a = {m: mean for m in CANDIDATES_A
              if (mean := mean_tune_wer(rows, [job(m, "encoder-fc1", s, "foldable" if m == "predictive" else "channels")
                                               for s in SPARSITIES])) is not None}
    best_a = min((m for m in mean_a if m not in ("kmeans", "magnitude")), key=mean_a.get)
    best_b = max(within_3_points(rows), key=lambda r: r["params_removed"], default=None)
    choice = {"rule": "a: lowest mean tune WER over 10/20/30 % on encoder-fc1 among the non-baseline candidates; "
                      "b: most params_removed with tune WER <= uncompressed + 3 points",
              "tune_uncompressed_wer": base, "tune_mean_wer_a": mean_a,
              "a": {"method": best_a, "units": "foldable" if best_a == "predictive" else "channels"},
              "b": None if best_b is None else {k: best_b[k] for k in ("method", "preset", "sparsity", "units",
                                                                       "options", "params_removed", "wer")}}
    write_choice("choice.json", choice)


def cmd_choose2(_: argparse.Namespace) -> None:
    """Round 2's rule (see ROUND2), on tune rows only; writes choice2.json."""
    rows = {r["label"]: r for r in rows_of("tune")}
    base = rows["uncompressed"]["wer"]
    mean = predictive_means(rows, ("uniform", "output"))
    best_b = max(within_3_points(rows), key=lambda r: r["params_removed"], default=None)
    choice = {"rule": "recommended allocation: output if its mean tune WER over 10/20/30 % (predictive, encoder-fc1) "
                      "is lower than uniform's; b: most params_removed with tune WER <= uncompressed + 3 points",
              "tune_uncompressed_wer": base, "tune_mean_wer_predictive": mean,
              "allocate": "output" if mean.get("output", 9) < mean.get("uniform", 9) else "uniform",
              "b": None if best_b is None else {k: best_b[k] for k in ("label", "params_removed", "wer")}}
    write_choice("choice2.json", choice)


def cmd_choose3(_: argparse.Namespace) -> None:
    """Round 3's rule (see ROUND3), on tune rows only; writes choice3.json."""
    rows = {r["label"]: r for r in rows_of("tune")}
    candidates = (("predictive", [job("predictive", "encoder-fc1", s, "foldable") for s in SPARSITIES]),
                  ("kmeans-fold(ridge=3.0)", ROUND3))
    mean = {name: m for name, jobs in candidates if (m := mean_tune_wer(rows, jobs)) is not None}
    choice = {"rule": "kmeans-fold(ridge=3) replaces predictive as recommended if its mean tune WER over 10/20/30 % "
                      "on encoder-fc1 is lower", "tune_mean_wer": mean,
              "recommended": min(mean, key=mean.get) if len(mean) == 2 else None}
    write_choice("choice3.json", choice)


def cmd_choose4(_: argparse.Namespace) -> None:
    """Round 4's rule (see ROUND4), on tune rows only; writes choice4.json."""
    rows = {r["label"]: r for r in rows_of("tune")}
    base = rows["uncompressed"]["wer"]
    mean = predictive_means(rows, ("uniform", "auto"))
    within = within_3_points(rows)
    choice = {"rule": "recommended allocation: auto if its mean tune WER over 10/20/30 % (predictive, encoder-fc1) is "
                      "lower than uniform's; b: most params_removed with tune WER <= uncompressed + 3 points, over "
                      "all tune rows and over the rows without vocabulary trimming",
              "tune_uncompressed_wer": base, "tune_mean_wer_predictive": mean,
              "allocate": "auto" if mean.get("auto", 9) < mean.get("uniform", 9) else "uniform",
              "b": most_removed(within), "b_clustering_only": most_removed([r for r in within if not r.get("vocabulary")])}
    write_choice("choice4.json", choice)


def tune_rows_of_round(jobs: list[dict], n: int) -> dict[str, dict]:
    """Every tune row by label; exits naming the rows of round ``n`` (``jobs``) that have not run on tune yet."""
    rows = {r["label"]: r for r in rows_of("tune")}
    missing = [j["label"] for j in jobs if j["label"] not in rows]
    if missing:
        sys.exit(f"round {n} rows not run on tune yet: {missing}")
    return rows


def cmd_choose5(_: argparse.Namespace) -> None:
    """Round 5's rule (see ROUND5), on tune rows only; writes choice5.json."""
    rows = tune_rows_of_round(ROUND5, 5)
    within = within_3_points(rows)
    b, alone = most_removed(within), most_removed([r for r in within if not r.get("vocabulary")])
    choice = {"rule": "b: most params_removed with tune WER <= uncompressed + 3 points, over all tune rows and over "
                      "the rows without vocabulary trimming; recommended's own units change only if the latter "
                      "removes >= 5 %",
              "tune_uncompressed_wer": rows["uncompressed"]["wer"],
              "round5_tune_wer": {j["label"]: rows[j["label"]]["wer"] for j in ROUND5},
              "b": b, "b_clustering_only": alone,
              "recommended_changes": bool(alone and alone["params_removed"] >= 0.05)}
    write_choice("choice5.json", choice)


def cmd_choose6(_: argparse.Namespace) -> None:
    """Round 6's rule (see ROUND6), on tune rows only; writes choice6.json."""
    rows = tune_rows_of_round(ROUND6, 6)
    within = within_3_points(rows)
    alone = most_removed([r for r in within if not r.get("vocabulary")], tie_break=True)
    choice = {"rule": "b: most params_removed with tune WER <= uncompressed + 3 points, over all tune rows and over "
                      "the rows without vocabulary trimming, ties broken by the lower tune WER; the README's (b) "
                      "command gains --allocate auto if the latter is an auto row; recommended's own units change "
                      "only if it removes >= 5 %",
              "tune_uncompressed_wer": rows["uncompressed"]["wer"],
              "round6_tune_wer": {j["label"]: rows[j["label"]]["wer"] for j in ROUND6},
              "b": most_removed(within, tie_break=True), "b_clustering_only": alone,
              "readme_allocate_auto": bool(alone and alone["job"]["allocate"] == "auto"),
              "recommended_changes": bool(alone and alone["params_removed"] >= 0.05)}
    write_choice("choice6.json", choice)


def cmd_report(_: argparse.Namespace) -> None:
    """Markdown: the target (a) grid (method x sparsity, tune / test / test2 WER) and every row with params_removed."""
    sets = {name: {r["label"]: r for r in rows_of(name)} for name in SETS}
    cell = lambda rows, label: f"{100 * rows[label]['wer']:.1f}" if label in rows else "–"  # noqa: E731
    print("Uncompressed: " + ", ".join(f"{n} {cell(rows, 'uncompressed')} %" for n, rows in sets.items()) + ".\n")
    print("| encoder-fc1 | " + " | ".join(f"{s:.0%} {n}" for s in SPARSITIES for n in sets) + " |")
    print("|---|" + "---|" * (len(sets) * len(SPARSITIES)))
    for m, alloc in [(m, "uniform") for m in CANDIDATES_A] + [("predictive", "auto")]:
        labels = [job(m, "encoder-fc1", s, "foldable" if m == "predictive" else "channels", alloc)["label"]
                  for s in SPARSITIES]
        name = m + ("" if alloc == "uniform" else f" ({alloc})")
        print(f"| {name} | " + " | ".join(cell(rows, l) for l in labels for rows in sets.values()) + " |")
    print("\n| setting | params removed (of all) | " + " | ".join(f"{n} WER %" for n in sets) + " |")
    print("|---|---|" + "---|" * len(sets))
    for label, r in sets["tune"].items():
        print(f"| {label} | {100 * r['params_removed']:.2f} % | "
              + " | ".join(cell(rows, label) for rows in sets.values()) + " |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--set", choices=list(SETS), required=True)
    r.add_argument("--only-a", action="store_true", help="tune: only the target (a) rows (and the uncompressed one)")
    r.add_argument("--skip", action="append", help="a row label not to run this time (repeatable)")
    r.add_argument("--choice-only", action="store_true", help="test: only the rows of the choice")
    r.add_argument("--round2", action="store_true", help="the round-2 rows (output allocation; see ROUND2)")
    r.add_argument("--round3", action="store_true", help="the round-3 rows (kmeans-fold + ridge; see ROUND3)")
    r.add_argument("--round4", action="store_true",
                   help="the round-4 rows (tune: ROUND4; test2: choice4.json's grid; see ROUND4)")
    r.add_argument("--round5", action="store_true",
                   help="the round-5 rows (tune: ROUND5; test3: choice5.json's grid; see ROUND5)")
    r.add_argument("--round6", action="store_true",
                   help="the round-6 rows (tune: ROUND6; test4: choice6.json's grid; see ROUND6)")
    r.add_argument("--part", help="write to <set>-<part>.jsonl (a second run side by side; rows are merged)")
    r.add_argument("--baselines-only", action="store_true",
                   help="test: only the uncompressed model and the paper's baselines (they do not depend on the choice)")
    r.set_defaults(func=cmd_run)
    sub.add_parser("choose").set_defaults(func=cmd_choose)
    sub.add_parser("choose2").set_defaults(func=cmd_choose2)
    sub.add_parser("choose3").set_defaults(func=cmd_choose3)
    sub.add_parser("choose4").set_defaults(func=cmd_choose4)
    sub.add_parser("choose5").set_defaults(func=cmd_choose5)
    sub.add_parser("choose6").set_defaults(func=cmd_choose6)
    sub.add_parser("report").set_defaults(func=cmd_report)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
