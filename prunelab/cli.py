"""The ``prunelab`` command line: transcribe, compress, eval, finetune, layers."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .errors import PrunelabError
from .models.load import DEFAULT_MODEL


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _open(spec: str, dtype: str = "float32"):
    from .models.load import load_model

    _log(f"loading {spec}{'' if dtype == 'float32' else ' (' + dtype + ' weights)'} ...")
    return load_model(spec, dtype=dtype)


def cmd_transcribe(args: argparse.Namespace) -> int:
    from .speech.transcribe import transcribe

    model = _open(args.model, args.dtype)
    status = 0
    for path in args.audio:
        try:
            text = transcribe(model, path)
        except PrunelabError as e:  # one bad file does not stop the others
            _log(f"error: {path}: {e}")
            status = 2
            continue
        print(f"{path}\t{text}" if len(args.audio) > 1 else text, flush=True)
    return status


def _preset(args: argparse.Namespace, methods: list[str]) -> str:
    """The --preset given, else where the recommended setting was measured (when asked for), else uniform."""
    from .compression.config import RECOMMENDED

    if args.preset:
        return args.preset
    return RECOMMENDED["preset"] if "recommended" in methods else "uniform"


def _plan_record(path: str) -> dict:
    """The fields a plan JSON records beside its clusters (method, units, seed, base_model), if any."""
    import json

    try:
        data = json.loads(open(path, encoding="utf-8").read())
    except (OSError, ValueError):
        return {}  # Plan.from_json says what is wrong with the file
    return data if isinstance(data, dict) and isinstance(data.get("clusters"), dict) else {}


def _config(args: argparse.Namespace):
    """The CompressionConfig of ``compress``; with --plan, the method and units the plan records are used
    unless --method / --units are given (then a different recorded one is pointed out)."""
    from .compression import CompressionConfig, Plan
    from .methods import METHODS

    plan = Plan.from_json(args.plan) if args.plan else None
    if plan is None and args.sparsity is None:
        raise PrunelabError("Give --sparsity S or --plan plan.json.")
    method, units = args.method, args.units
    if plan is not None:
        record = _plan_record(args.plan)
        saved_method, saved_units = record.get("method"), record.get("units")
        if saved_method in METHODS:
            if method is None:
                method = saved_method
                _log(f"method {method} (recorded in {args.plan})")
            elif method != saved_method:
                _log(f"note: {args.plan} was made with method {saved_method}; compressing with --method {method}")
        if saved_units in ("channels", "foldable"):
            if units is None:
                units = saved_units
            elif units != saved_units:
                _log(f"note: {args.plan} was made with --units {saved_units}; compressing with --units {units}")
        base = record.get("base_model")
        if isinstance(base, str) and base and base != ((args.model or "").strip() or DEFAULT_MODEL):
            _log(f"note: {args.plan} was made for {base}; applying it to {args.model}")
        if args.allocate not in (None, "uniform"):
            raise PrunelabError(f"--allocate {args.allocate} chooses the cluster counts itself; a --plan gives them. "
                                "Give one of the two.")
    return CompressionConfig(method=method or "kmeans", sparsity=args.sparsity, preset=_preset(args, [method or "kmeans"]),
                             plan=plan, seed=args.seed, fold=not args.no_fold, allocate=args.allocate, units=units,
                             vocabulary=args.vocabulary, options=_options(args.options))


def _options(text: str | None) -> dict:
    """--options: the method's switches as a JSON object (checked by the method: names and types)."""
    import json

    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as e:
        raise PrunelabError(f"--options must be a JSON object like '{{\"variance\": true}}'; this is not JSON ({e}).") from None
    if not isinstance(value, dict):
        raise PrunelabError(f"--options must be a JSON object like '{{\"variance\": true}}', not {type(value).__name__}.")
    return value


def cmd_compress(args: argparse.Namespace) -> int:
    from .compression import compress_
    from .models.saved import check_output_folder, save_compressed
    from .report.size import format_size_table, size_report

    asked = args.method
    if asked == "recommended" and getattr(args, "calibration", None) and args.plan is None:
        args = _repaired_recommended(args)
    config = _config(args)
    check_output_folder(args.out)  # before the work: a folder that cannot be written is said at once
    calibration = _calibration(args)  # likewise: unusable calibration audio is said before loading the model
    small = _open(args.model, args.dtype)
    before = size_report(small)
    if calibration is None:
        # in place: the original is not needed afterwards, and each original layer is freed as it is replaced
        # (peak memory near the model's own size instead of ~1.8 x with every layer compressed)
        compress_(small, config, progress=lambda i, n, msg: _log(f"[{i}/{n}] {msg}"))
    else:  # repair reads the original: compress a copy
        from .compression import compress
        from .recovery.repair import RepairConfig, describe, repair

        original = small
        small = compress(original, config, progress=lambda i, n, msg: _log(f"[{i}/{n}] {msg}"))
        small = repair(small, original, calibration, RepairConfig(alpha=args.alpha, select=_select(args, asked)),
                       progress=lambda i, n, msg: _log(f"[repair {i}/{n}] {msg}"))
        print(describe(small.compression["recovery"][-1]))
    out = save_compressed(small, args.out)
    alloc = "plan" if config.plan is not None else config.allocate
    label = f"recommended = {config.method}" if asked == "recommended" else config.method
    print(f"method {label}, allocation {alloc}, units {config.units}: sparsity over compressible parameters "
          f"{small.compression['sparsity']:.1%} (the plan's K, before folding), "
          f"{small.compression['params_removed']:.2%} of all parameters removed")
    if (vocab := small.compression.get("vocabulary")):
        print(f"vocabulary {vocab['script']}: {vocab['kept']:,} of {vocab['vocab_size']:,} decoder tokens kept")
    print(format_size_table(before, size_report(small)))
    print(f"saved to {out}")
    return 0


def _repaired_recommended(args: argparse.Namespace) -> argparse.Namespace:
    """``compress --method recommended --calibration``: the repaired setting chosen on tune clips
    (:data:`~prunelab.recovery.repair.RECOMMENDED_REPAIRED`, as ``eval`` uses it): its method, and its preset, units
    and allocation where not given; --sparsity times its scale (0.5 -> 0.6 of the FFN neurons). A copy of ``args``."""
    from .compression.config import resolve_recommended
    from .recovery.repair import RECOMMENDED_REPAIRED as rec

    if args.sparsity is None:
        return args  # (_config says to give --sparsity or --plan)
    out = argparse.Namespace(**{**vars(args), "preset": args.preset or rec["preset"]})
    out.method, out.allocate, out.units, sparsity = resolve_recommended(rec, args.sparsity, args.allocate, args.units)
    scale = rec.get("scale", 1.0)
    if not 0.0 <= sparsity < 1.0:
        raise PrunelabError(f"--method recommended with --calibration scales --sparsity by {scale:g} (its axis: 0.5 "
                            f"removes {0.5 * scale:.0%} of the FFN neurons); {args.sparsity:g} gives {sparsity:g}. "
                            f"Give a sparsity below {1 / scale:.2f}.")
    out.sparsity = sparsity
    _log(f"recommended with calibration = {out.method} {out.preset}/{out.units} allocate {out.allocate}, "
         f"sparsity {args.sparsity:g} x {scale:g} = {sparsity:g} of the selected layers")
    return out


def _select(args: argparse.Namespace, method: str) -> bool:
    """Whether repair re-chooses the FFN neurons kept: --select-units, or what ``recommended`` with calibration
    stands for (:data:`~prunelab.recovery.repair.RECOMMENDED_REPAIRED`)."""
    from .recovery.repair import RECOMMENDED_REPAIRED

    return bool(args.select_units or (method == "recommended" and RECOMMENDED_REPAIRED.get("select")))


def _calibration(args: argparse.Namespace):
    """The calibration set of --calibration (``bundled``: the package's own set), None without it; notes on
    skipped clips go to stderr."""
    if getattr(args, "select_units", False) and not getattr(args, "calibration", None):
        raise PrunelabError("--select-units re-chooses neurons from calibration audio: give --calibration DIR (or "
                            "--calibration bundled) with it.")
    if not getattr(args, "calibration", None):
        return None
    from .recovery.calibration import load_calibration

    source = None if args.calibration == "bundled" else args.calibration
    calibration = load_calibration(source, limit=args.calibration_clips)
    for name, reason in calibration.skipped:
        _log(f"note: calibration clip {name} skipped: {reason}")
    _log(f"calibration: {len(calibration)} clips, {calibration.seconds:.0f} s ({calibration.source})")
    return calibration


def _default_alpha() -> float:
    from .recovery.repair import REPAIR_ALPHA

    return REPAIR_ALPHA


def _presets(text: str) -> list[str]:
    from .compression import PRESETS

    names = _names(text)
    bad = [n for n in names if n not in PRESETS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown preset {', '.join(map(repr, bad)) or repr(text)}; "
                                         f"choose from: {', '.join(PRESETS)} (several: comma-separated)")
    return names


def cmd_eval(args: argparse.Namespace) -> int:
    from .speech.data import load_eval_set
    from .speech.evaluate import evaluate, format_table, grid, validate_methods
    from .speech.results import RowFile, data_fingerprint

    validate_methods(args.methods)  # before loading anything
    calibration = _calibration(args)
    recommended = recovery = None
    if calibration is not None:
        from .recovery.repair import RECOMMENDED_REPAIRED

        recommended = RECOMMENDED_REPAIRED
        recovery = (f"repair {len(calibration)} clips" + ("" if args.alpha == _default_alpha() else f" alpha {args.alpha:g}")
                    + (" select" if args.select_units else ""))
    presets = args.preset or [recommended["preset"] if recommended and "recommended" in args.methods
                              else _preset(args, args.methods)]
    cells = grid(args.methods, args.sparsities, presets, allocate=args.allocate, units=args.units,
                 vocabulary=args.vocabulary, recovery=recovery, recommended=recommended)
    on_ray = args.workers is not None or args.ray_address is not None
    if on_ray and calibration is not None:
        raise PrunelabError("--calibration runs here, not on Ray workers yet: leave out --workers / --ray-address.")
    if on_ray:
        from .sweep import require_ray

        require_ray()
        if args.workers is not None and args.workers < 1:
            raise PrunelabError(f"--workers must be at least 1, got {args.workers}.")
    utterances = load_eval_set(args.data, limit=args.limit)
    spec = (args.model or "").strip() or DEFAULT_MODEL
    name = spec if args.dtype == "float32" else f"{spec} [{args.dtype}]"  # what the rows record as their model
    store = (RowFile(args.json, model=name, seed=args.seed, utterances=len(utterances),
                     data=data_fingerprint(utterances)) if args.json else None)
    done = {r.key: r for r in store.rows} if store else {}
    todo = [c for c in cells if c.key not in done]
    if len(todo) < len(cells):
        _log(f"resuming from {args.json}: {len(cells) - len(todo)} of {len(cells)} rows already there")
    on_row = store.add if store else None
    if not todo:
        rows = [done[c.key] for c in cells]
    elif on_ray:
        from .sweep import evaluate_on_ray

        new = evaluate_on_ray(spec, utterances, todo, workers=args.workers, address=args.ray_address,
                              seed=args.seed, log=_log, on_row=on_row,
                              load_kwargs={"dtype": args.dtype}, model_name=name)
        done.update((r.key, r) for r in new)
        rows = [done[c.key] for c in cells]
    else:
        model = _open(spec, args.dtype)
        recover = None
        if calibration is not None:
            from .recovery.repair import RepairConfig, repair

            def recover(small, cell):
                return repair(small, model, calibration,
                              RepairConfig(alpha=args.alpha, select=_select(args, cell.method)))
        rows = evaluate(model, utterances, methods=args.methods, sparsities=args.sparsities, preset=presets,
                        seed=args.seed, log=_log, allocate=args.allocate, units=args.units, vocabulary=args.vocabulary,
                        done=done.values(),
                        on_row=on_row, model_name=name, recover=recover, recovery=recovery,
                        recommended=recommended)
    print(format_table(rows))
    if store:
        store.finish(rows)
        _log(f"wrote {args.json}")
    return 0


class _ProgressLine:
    """``progress(done, total, message)`` as one stderr line updated in place (``\r``); notes on lines of their own."""

    def __init__(self) -> None:
        self.open = False

    def __call__(self, done: int, total: int, message: str) -> None:
        if message.startswith("note:"):
            self.end()
            _log(message)
            return
        sys.stderr.write(f"\r[{done}/{total}] {message}\033[K")
        sys.stderr.flush()
        self.open = True

    def end(self) -> None:
        if self.open:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.open = False


def cmd_finetune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .models.saved import is_saved_model
    from .recovery.finetune import FinetuneConfig, FinetuneInterrupted, check_out, finetune

    folder = Path(args.folder).expanduser()
    if not folder.is_dir() or not is_saved_model(folder):
        what = "does not exist" if not folder.exists() else "is a file" if not folder.is_dir() else \
            "is not a model saved by prunelab (no compression.json)"
        raise PrunelabError(f"{args.folder} {what}; fine-tune a folder that `prunelab compress ... --out FOLDER` wrote.")
    config = FinetuneConfig(epochs=args.epochs, train=args.train, learning_rate=args.lr, batch_size=args.batch_size,
                            max_clips=args.max_clips, seed=args.seed)
    config.check()
    check_out(args.out)  # before loading anything: a folder that cannot be written is said at once
    model = _open(str(folder))
    line = _ProgressLine()
    try:
        tuned = finetune(model, args.data, config, teacher=args.teacher, out=args.out, progress=line,
                         resume=not args.restart)
    except FinetuneInterrupted as e:
        line.end()
        _log(f"interrupted: {e}")
        return 130
    finally:
        line.end()
    step = tuned.compression["recovery"][-1]
    loss = "n/a" if step["final_loss"] is None else f"{step['final_loss']:.4f}"
    print(f"fine-tuned ({step['train']}, labels from {step['labels']}) on {step['clips']} clips "
          f"({step['seconds']:.0f} s of audio), {step['steps']} steps in {step['time_s']:.0f} s; "
          f"final loss {loss}")
    print(f"saved to {Path(args.out).absolute()}")
    return 0


def cmd_layers(args: argparse.Namespace) -> int:
    from .compression import Plan, find_layers

    model = _open(args.model, args.dtype)
    layers = find_layers(model.model)
    for l in layers:
        print(f"{l.name}\t{l.part}\t{l.group}\t{l.kind}\t{l.out_features}x{l.in_features}")
    if args.plan_out:
        try:
            Plan({l.name: l.channels for l in layers}).to_json(args.plan_out, base_model=args.model)
        except OSError as e:
            raise PrunelabError(f"Cannot write the plan template to {args.plan_out}: {e.strerror or e}.") from None
        _log(f"wrote a plan template (K = C everywhere) to {args.plan_out}")
    return 0


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, but never breaking a line inside a hyphenated name (``magnitude-unstructured``)."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def build_parser() -> argparse.ArgumentParser:
    from .compression import ALLOCATIONS, PRESETS, RECOMMENDED, method_choices
    from .compression.plan import UNITS
    from .compression.vocabulary import SCRIPTS, VOCABULARY_HELP
    from .methods import METHODS, method_names
    from .models.load import DTYPES
    from .models.shapes import random_specs

    p = argparse.ArgumentParser(prog="prunelab", description=__doc__, formatter_class=_HelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    def model_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"model spec: {DEFAULT_MODEL} (default, offline), tiny:whisper, tiny:ctc, a Hugging Face id, "
                             "a folder, or random:<shape> (random weights with a real model's shapes: "
                             + ", ".join(random_specs()) + ")")
        sp.add_argument("--dtype", default="float32", choices=list(DTYPES),
                        help="weight dtype (default float32); bfloat16 halves the memory and transcribes faster "
                             "on a CPU (BENCHMARKS.md)")

    def calibration_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--calibration", metavar="DIR", default=None,
                        help="after compressing, repair the model on this unlabeled audio (a folder, or 'bundled' for "
                             "the calibration set shipped with prunelab): fc2 / out_proj / k_proj re-solved so each "
                             "sublayer gives what the original gives (no training; seconds to a minute). With it, "
                             "--method recommended means the repaired setting chosen on tune clips (predictive FFN "
                             "neurons of encoder and decoder, auto, sparsity x 1.2, the neurons kept re-chosen by "
                             "repair as with --select-units). Without it, compression stays "
                             "data-free")
        sp.add_argument("--calibration-clips", type=int, default=None, metavar="N",
                        help="use the first N calibration clips (default all)")
        sp.add_argument("--select-units", action="store_true",
                        help="with --calibration: repair also re-chooses WHICH FFN neurons each layer keeps (as many "
                             "as compressed) from the calibration audio, by greedy Optimal Brain Surgeon on their "
                             "statistics, instead of keeping the compression's choice (pruned or folded neurons; "
                             "a minute more). Changes what the method chose: rows say so")
        sp.add_argument("--alpha", type=float, default=_default_alpha(),
                        help=f"repair's ridge strength relative to each Gram diagonal (default {_default_alpha():g})")

    def method_args(sp: argparse.ArgumentParser, several_presets: bool = False) -> None:
        preset_help = ("which layers a global sparsity applies to (default: uniform, or "
                       f"{RECOMMENDED['preset']} when the recommended method is asked for)")
        if several_presets:
            sp.add_argument("--preset", default=None, type=_presets, metavar="P[,P...]",
                            help=preset_help + "; several comma-separated presets are swept one after another. "
                                 f"Presets: {', '.join(PRESETS)}")
        else:
            sp.add_argument("--preset", default=None, choices=list(PRESETS), help=preset_help)
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--allocate", choices=list(ALLOCATIONS), default=None,
                        help="per-layer cluster counts: uniform (same sparsity on every selected layer, default) or "
                             "auto (from each layer's weight distortion curve) or output (from how much compressing each "
                             "group alone changes the model's output on stand-in inputs with no speech; slower); "
                             f"'recommended' defaults to {RECOMMENDED['allocate']}")
        sp.add_argument("--units", choices=list(UNITS), default=None,
                        help="channels: each layer's output channels (the paper; default); foldable: FFN neurons, "
                             "attention value and query/key dims per head, folded into the layer that reads them; "
                             f"'recommended' defaults to {RECOMMENDED['units']}")
        sp.add_argument("--vocabulary", choices=list(SCRIPTS), default=None, help=VOCABULARY_HELP)

    sp = sub.add_parser("transcribe", formatter_class=_HelpFormatter, help="print one transcript per audio file")
    sp.add_argument("audio", nargs="+")
    model_arg(sp)
    sp.set_defaults(func=cmd_transcribe)

    sp = sub.add_parser("compress", formatter_class=_HelpFormatter, help="compress a model and save it to a folder")
    model_arg(sp)
    sp.add_argument("--method", default=None, choices=method_choices(),
                    help=f"default kmeans, or with --plan the method the plan records; kmeans is the paper's method; recommended = {RECOMMENDED['method']} with "
                         f"{RECOMMENDED['allocate']} allocation on {RECOMMENDED['preset']} (best in benchmarks/WER_STUDY.md)")
    group = sp.add_mutually_exclusive_group()
    group.add_argument("--sparsity", type=float, help="fraction of channels removed per layer, e.g. 0.3")
    group.add_argument("--plan", help="plan JSON with per-layer cluster counts")
    method_args(sp)
    sp.add_argument("--no-fold", action="store_true", help="keep FFN pairs unfolded")
    sp.add_argument("--options", default=None, metavar="JSON",
                    help='the method\'s switches as JSON, e.g. --method kmeans-fold --options \'{"variance": true}\' '
                         "(prunelab.METHODS lists each method's options)")
    sp.add_argument("--out", required=True, help="output folder")
    calibration_args(sp)
    sp.set_defaults(func=cmd_compress)

    sp = sub.add_parser("eval", formatter_class=_HelpFormatter, help="WER table of methods x sparsities on a data folder")
    model_arg(sp)
    sp.add_argument("--data", required=True, help="folder of name.wav + name.txt pairs, or a LibriSpeech split")
    sp.add_argument("--methods", type=_names, default=method_names(),
                    help="comma-separated methods: " + "; ".join(f"{n} = {m.help}" for n, m in METHODS.items())
                         + "; recommended")
    sp.add_argument("--sparsities", type=_floats, default=[0.1, 0.3])
    method_args(sp, several_presets=True)
    sp.add_argument("--limit", type=int, help="only the first N utterances")
    sp.add_argument("--json", help="also write the rows to this JSON file, each as soon as it is measured; "
                                   "if the file already holds rows of this run (same model, seed and number of "
                                   "utterances), the sweep resumes and skips them")
    sp.add_argument("--workers", type=int, default=None,
                    help="run the sweep on N Ray workers (one model replica each, one GPU each where there are "
                         'GPUs; needs pip install -e ".[cluster]"); default: sequentially in this process')
    sp.add_argument("--ray-address", default=None,
                    help="an existing Ray cluster to run the sweep on (e.g. auto, ray://head:10001); its workers "
                         "must be able to import prunelab and load --model")
    calibration_args(sp)
    sp.set_defaults(func=cmd_eval)

    from .recovery.finetune import DEFAULT_LEARNING_RATE, TRAIN_MODES

    sp = sub.add_parser("finetune", formatter_class=_HelpFormatter,
                        help="fine-tune a compressed model saved by prunelab on audio (labels from .txt files, or "
                             "distilled from the original model)")
    sp.add_argument("folder", metavar="FOLDER", help="a compressed model saved by prunelab (prunelab compress --out)")
    sp.add_argument("--data", required=True,
                    help="folder of name.wav + name.txt pairs, a LibriSpeech split, or audio without .txt files "
                         "(then the teacher labels them)")
    sp.add_argument("--epochs", type=float, default=3.0, help="passes over the data (default 3)")
    sp.add_argument("--out", required=True,
                    help="output folder: checkpoints each epoch while it runs, the fine-tuned model at the end; "
                         "running the same command again resumes from the last checkpoint")
    sp.add_argument("--train", choices=list(TRAIN_MODES), default="compressed",
                    help="; ".join(f"{k}: {v}" for k, v in TRAIN_MODES.items()) + " (default compressed)")
    sp.add_argument("--lr", type=float, default=None,
                    help="learning rate (default " + ", ".join(f"{v:g} for {k}" for k, v in DEFAULT_LEARNING_RATE.items())
                         + ")")
    sp.add_argument("--batch-size", type=int, default=8,
                    help="samples per step (Whisper: packed 30 s windows of several clips; per process)")
    sp.add_argument("--max-clips", type=int, default=None, help="only the first N clips")
    sp.add_argument("--teacher", default=None,
                    help="model spec to distil from (default: the model FOLDER was compressed from); used for clips "
                         "without labels, and with labels adds its soft targets to the loss")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--restart", action="store_true", help="start again instead of resuming a run in --out")
    sp.set_defaults(func=cmd_finetune)

    sp = sub.add_parser("layers", formatter_class=_HelpFormatter, help="list compressible layers (names to use in a plan)")
    model_arg(sp)
    sp.add_argument("--plan-out", help="write a plan template JSON here")
    sp.set_defaults(func=cmd_layers)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PrunelabError as e:
        _log(f"error: {e}")
        return 2
    except KeyboardInterrupt:
        _log("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
