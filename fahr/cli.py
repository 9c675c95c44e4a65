"""``fahr``: the command line of every pipeline stage, the book and the benchmarks."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from fahr.core import config
from fahr.core.errors import CheckpointError
from fahr.data.manifest import ManifestError
from fahr.data.real.prepare import RealDataError
from fahr.report.book import ChapterFailed

# Each stage of the pipeline and what it does.
STAGES: dict[str, str] = {
    "synth": "render the FAHR-Synth cohorts with their planted truth",
    "prepare": "build the real-data cohorts (data.source=real): adapters, face alignment, manifests",
    "align": "detect faces and align them to 112x112 by five landmarks",
    "shard": "write a manifest's crops into WebDataset tar shards",
    "pretrain": "MAE-pretrain the ViT encoder",
    "finetune-age": "two-stage, age-balanced FaceAge fine-tuning",
    "finetune-survival": "Cox partial-likelihood FaceSurvival fine-tuning",
    "predict": "run FaceAge / FaceSurvival on a folder of photos, write a CSV",
    "evaluate": "write the evaluation tables (FaceAge error, survival analyses, subgroups) as CSV files",
}


def _profile_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="demo", help="configs/<PROFILE>.yaml (smoke, demo, paper)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one config value, dotted for nested keys (repeatable), e.g. --set seed=3",
    )  # fmt: skip


def _load(args: argparse.Namespace) -> config.Config:
    return config.load(args.profile, args.overrides)


def _load_data(args: argparse.Namespace) -> config.Config:
    """The config of a command that reads the profile's data: a training stage needs every real dataset of its
    cohorts before anything runs; the book needs at least one (a chapter without its datasets says what to
    provide)."""
    from fahr.data.real import prepare

    cfg = _load(args)
    if args.command in prepare.STAGE_COHORTS:
        prepare.check_cohorts(cfg, prepare.STAGE_COHORTS[args.command])
    else:
        prepare.check_any(cfg)
    return cfg


def cmd_config(args: argparse.Namespace) -> int:
    cfg = _load(args)
    print(json.dumps({"config_hash": cfg.hash, **cfg.to_dict()}, indent=2))
    return 0


def cmd_book(args: argparse.Namespace) -> int:
    from fahr.report import book

    cfg = _load_data(args)
    overrides = config.normalise_overrides(args.overrides)
    runs = book.run_chapters(cfg, overrides, only=getattr(args, "name", None), force=args.force)
    for run in runs:
        state = f"executed in {run.seconds:.1f} s" if run.executed else "up to date, not executed"
        print(f"[book] {run.name}: {state}")
    if getattr(args, "no_html", False):
        return 0
    built = book.build_html(cfg.profile, force=args.force, data_source=cfg.data.source)
    html = book.paths.html_dir(cfg.profile) / "index.html"
    print(f"[book] HTML {'rendered' if built else 'up to date'}: {html}")
    return 0


def cmd_spread(args: argparse.Namespace) -> int:
    from fahr.report import book, spread

    cfg = _load_data(args)
    overrides = config.normalise_overrides(args.overrides)
    try:
        chosen = spread.run(cfg, overrides, args.seeds, cpus=args.cpus)
    except (ValueError, RuntimeError) as err:
        print(f"fahr spread: {err}", file=sys.stderr)
        return 2
    runs = book.run_chapters(cfg, overrides)  # the main build (seed {chosen[0]}), reused where it is up to date
    executed = {run.name for run in runs if run.executed}  # those executed just now already read the spread
    for name in ("report", "reproducibility"):  # they read the spread: executed again with it, unless just done
        if name not in executed:
            book.run_chapters(cfg, overrides, only=name)
    built = book.build_html(cfg.profile, force=True, data_source=cfg.data.source)
    table = spread.summary(spread.tables(cfg.profile, main=_main_results(cfg)))
    print(table.round(3).to_string())
    machines = spread.machines(cfg.profile)
    if len(machines):
        print(machines.to_string())
    for name in args.cpus:
        if name not in machines.columns:
            print(f"[spread] CPU {name} is left out: its build used the CPU kernels of the main build (this machine "
                  "has nothing to leave out for it) or another config")  # fmt: skip
    print(f"[spread] {len(chosen)} seeds ({', '.join(map(str, chosen))}); emulated CPUs: "
          f"{', '.join(args.cpus) or 'none'}; HTML {'rendered' if built else 'kept'}: "
          f"{book.paths.html_dir(cfg.profile) / 'index.html'}")  # fmt: skip
    return 0


def _names(text: str) -> list[str]:
    """A comma-separated list of names (``avx2,generic``), blanks dropped."""
    return [name.strip() for name in text.split(",") if name.strip()]


def _main_results(cfg):
    import json

    from fahr.report import results

    return results.table(json.loads(results.path(cfg.profile).read_text()))


def cmd_bench(args: argparse.Namespace) -> int:
    from fahr import bench

    table = bench.run(_load(args), only=args.only)
    print(table.to_string(index=False))
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from fahr.data.synth import cohorts, export

    cfg = _load(args)
    chosen = tuple(args.cohort) if args.cohort else cohorts.COHORTS
    if args.export is not None:  # the cohorts in the real datasets' formats, for `fahr prepare`
        target = args.export.expanduser().resolve()
        try:
            summary = export.export(cfg, target, chosen, force=args.force)
        except FileExistsError as err:
            print(f"fahr synth: {err}", file=sys.stderr)
            return 2
        print(summary.to_string(index=False))
        print(f"[synth] exported to {target} (described in {target / export.README})")
        command = export.prepare_command(cfg.profile, target, chosen)
        if command:
            print(f"[synth] prepare the real cohorts from it with:\n  {command}")
        return 0
    built = cohorts.build(cfg, chosen, force=args.force)
    for name, row in built.iterrows():
        print(f"[synth] {name}: {row.folder / 'manifest.parquet'}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    import pandas as pd

    from fahr.data.real import prepare

    cfg = _load(args)  # each cohort checks for its own datasets before it is built
    if cfg.data.source != "real":
        print(f"fahr prepare: profile {cfg.profile!r} runs on FAHR-Synth (data.source=synth); `fahr synth` builds "
              "its cohorts. Use --set data.source=real for the real datasets.", file=sys.stderr)  # fmt: skip
        return 2
    every = [c for c in prepare.COHORT_DATASETS if c not in prepare.OPTIONAL or c in prepare.available(cfg)]
    built = prepare.build(cfg, tuple(args.cohort) if args.cohort else tuple(every), rescan=True, workers=args.workers)
    for name, row in built.iterrows():
        reasons = pd.read_csv(row.folder / "excluded.csv")["reason"].value_counts()
        why = "; ".join(f"{n} {reason}" for reason, n in reasons.items())
        print(f"[prepare] {name}: {row.action}, {row.photos} photos, {row['left out']} left out"
              f"{f' ({why})' if why else ''}, listed in {row.folder / 'excluded.csv'}")  # fmt: skip
    return 0


def cmd_align(args: argparse.Namespace) -> int:
    from fahr.core import provenance
    from fahr.data import align

    cfg = _load(args)
    table = align.align_folder(args.photos, args.out, size=args.size, workers=args.workers)
    report = args.out / "align.csv"
    with provenance.artifact(report, cfg, "align", photos=len(table), size=args.size) as tmp:
        table.to_csv(tmp, index=False)
    print(f"[align] {align.counts_line(table)}; crops in {args.out}, table {report}")
    return 0


def cmd_shard(args: argparse.Namespace) -> int:
    from fahr.core import paths, provenance
    from fahr.data import manifest, shards
    from fahr.data.synth import cohorts

    cfg = _load(args)
    if args.manifest is not None:
        path, out = args.manifest, args.out or args.manifest.parent / "shards"
    else:
        path = cohorts.cohort_dir(cfg.profile, args.cohort) / "manifest.parquet"
        out = args.out or paths.stage_dir(cfg.profile, "shards") / args.cohort
    checked = manifest.load(path)  # every photo decoded before a shard is written
    result = shards.write_shards(checked.valid, path.parent, out, maxcount=args.maxcount, progress=True)
    provenance.write_json(
        provenance.provenance_path(out),
        provenance.record(cfg, "shard", provenance.now(), manifest=str(path), shards=len(result.paths)),
    )
    print(f"[shard] {len(result.paths)} shards, {len(result.index)} photos, {len(result.skipped)} skipped: {out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from fahr.train import faceage, facesurvival, pretrain

    cfg = _load_data(args)
    if args.command == "pretrain":
        out = pretrain.run(cfg)
    elif args.command == "finetune-age":
        out = faceage.run(cfg, pretrained=not args.scratch, fraction=args.fraction)
    else:
        out = facesurvival.run(cfg, pretrained=not args.scratch, fraction=args.fraction)
    print(f"[{args.command}] {out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from fahr.analysis import tables

    written = tables.run(_load_data(args))
    for name, path in written.items():
        print(f"[evaluate] {name}: {path}")
    return 0


def cmd_crosspath(args: argparse.Namespace) -> int:
    import pandas as pd

    from fahr.analysis import crosspath
    from fahr.core import paths, provenance
    from fahr.data.real import prepare

    cfg = _load(args)
    if cfg.data.source != "real":
        print("fahr crosspath: needs data.source=real and data.root at a tree written by `fahr synth --export`",
              file=sys.stderr)  # fmt: skip
        return 2
    synth = args.synth.resolve() if args.synth else crosspath.synth_folder(cfg)
    if synth is None:
        print(f"fahr crosspath: {prepare.root(cfg)} names no FAHR-Synth cohorts that are still there (its "
              f"{crosspath.KEY} has no provenance record, or the folder it names is gone): pass --synth",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        table = crosspath.compare(cfg, synth, seed=cfg.seed)
    except (FileNotFoundError, ValueError) as err:
        print(f"fahr crosspath: {err}", file=sys.stderr)
        return 2
    if table.empty:
        print(f"fahr crosspath: {crosspath.sentence(table)}", file=sys.stderr)
        return 2
    out = paths.profile_dir(cfg.profile) / "crosspath.csv"
    with provenance.artifact(out, cfg, "crosspath", synth=str(synth)) as tmp:
        table.to_csv(tmp, index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.drop(columns=["why", "judged"]).round(4).to_string(index=False))
    failed = crosspath.failures(table)
    for line in failed:
        print(f"[crosspath] out of tolerance: {line}", file=sys.stderr)
    judged = int(table["judged"].sum())
    print(f"[crosspath] {judged - len(failed)} of {judged} checks within tolerance -> {out}")
    return 1 if failed else 0


def cmd_verdicts(args: argparse.Namespace) -> int:
    import pandas as pd

    from fahr.report import rules, verdicts

    cfg = _load(args)
    try:
        table, scores = verdicts.build_inputs(cfg)
        if args.scores:
            scores = verdicts.replace(scores, args.scores)
    except (FileNotFoundError, verdicts.ScoresError) as err:
        print(f"fahr verdicts: {err}", file=sys.stderr)
        return 2
    if args.export_scores:
        out = verdicts.export(scores, args.export_scores)
        print(f"[verdicts] the scores the verdicts use -> {out}")
    decided = verdicts.decide(cfg, table, scores)
    with pd.option_context("display.width", 200, "display.max_colwidth", 120):
        shown = decided[["claim", "verdict", "this build"]] if args.evidence else decided[["claim", "verdict"]]
        print(shown.to_string(index=False))
    if args.adversaries:
        adversaries = verdicts.adversary_table(table, scores, verdicts.data_name(cfg))
        with pd.option_context("display.width", 250, "display.max_columns", 30):
            print(adversaries.T.to_string())
        print(verdicts.adversary_sentence(adversaries))
    if args.output:
        from fahr.core import provenance

        with provenance.atomic_path(args.output) as tmp:
            decided.to_csv(tmp, index=False)
        print(f"[verdicts] -> {args.output}")
    print(f"[verdicts] rules {rules.spec_hash()} (fahr/report/rules.py)"
          + (f"; scores from {args.scores}" if args.scores else ""))  # fmt: skip
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from fahr import predict
    from fahr.core import provenance
    from fahr.data import align
    from fahr.models import importer

    cfg = _load(args)
    sources: list[Path] = []
    for item in args.photos:
        if item.is_dir():
            sources += sorted(p for p in item.rglob("*") if p.suffix.lower() in align.IMAGE_EXTENSIONS)  # FIFOs too
        elif item.suffix == ".txt":
            if not align.is_regular(item):
                print(f"fahr predict: {item}: no such list of photos (or not a regular file)", file=sys.stderr)
                return 2
            sources += [Path(line.strip()) for line in item.read_text().splitlines() if line.strip()]
        else:
            sources.append(item)
    device = provenance.resolve_device(cfg.device)
    try:
        journal = args.output.with_name(f".{args.output.name}.partial.jsonl")  # a killed run resumes from it
        table = predict.photos(sources, args.faceage, args.facesurvival, device=device, workers=args.workers,
                               normalisation=cfg.published.normalisation, journal=journal)  # fmt: skip
    except importer.WeightsImportError as err:
        print(f"fahr predict: {err}", file=sys.stderr)
        return 2
    with provenance.artifact(args.output, cfg, "predict", photos=len(table)) as tmp:
        table.to_csv(tmp, index=False)
    journal.unlink(missing_ok=True)
    level = table.attrs.get("interval")
    said = (f"ages with {level:.0%} intervals" if level else "no interval calibration beside this model (the FaceAge "
            "chapter makes one for the models trained here), so age_lower and age_upper are empty")  # fmt: skip
    print(f"[predict] {align.counts_line(table)}; {said} -> {args.output}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from fahr import publish

    try:
        done = publish.publish(args.profile, args.remote, args.branch, allow_clinical=args.allow_clinical)
    except publish.PublishRefused as err:
        print(f"fahr publish: {err}", file=sys.stderr)
        return 2
    print(f"published the {done['profile']} book of {done['commit'][:10]} to {done['remote']} {done['branch']}")
    return 0


def _import_summary(provenance: dict) -> list[str]:
    """What ``fahr import-weights`` says about an import: layout, shape, what was left out, what was assumed."""
    c = provenance["file_config"]
    naming = f", {provenance['hf_naming']} names" if provenance["hf_naming"] else ""
    lines = [
        f"{provenance['source']} (sha256 {provenance['sha256'][:16]}…): layout {provenance['layout']} (encoder under "
        f"{provenance['prefix']!r}{naming}); ViT depth {c['depth']}, width {c['embed_dim']}, {c['num_heads']} heads "
        f"({provenance['num_heads']}), patch {c['patch_size']}, {c['image_size']} px, MLP ratio {c['mlp_ratio']:g}; "
        f"{provenance['position_embedding']} position embedding"
        + (f", resized to {provenance['image_size']} px" if provenance["position_embedding_resized"] else ""),
        f"age head: {provenance['age_head']!r}" if provenance["age_head"] else "no age head (foundation encoder)",
    ]
    lines += [f"not used: {len(keys)} tensors: {why}" for why, keys in provenance["unused"].items()]
    lines += [f"not used: {key}: {what}" for key, what in provenance["other_contents"].items()]
    norm = provenance["normalisation"]
    lines.append(f"assumed: layer-norm eps {provenance['layer_norm_eps']:g}; input normalisation {norm['name']!r} "
                 f"(mean {norm['mean']}, std {norm['std']}), folded into the patch embedding")  # fmt: skip
    return lines


def cmd_import_weights(args: argparse.Namespace) -> int:
    import time

    from fahr.core import paths, provenance
    from fahr.models import importer

    cfg = config.load(args.profile, [*args.overrides, "device=cpu"])  # an import runs on the CPU, whatever the profile
    normalisation = args.normalisation or cfg.published.normalisation
    started, start = provenance.now(), time.perf_counter()
    try:
        imported = importer.import_file(args.file, args.kind, normalisation=normalisation,
                                        image_size=args.image_size, num_heads=args.num_heads)  # fmt: skip
    except (ValueError, FileNotFoundError) as err:  # WeightsImportError included
        print(f"fahr import-weights: {err}", file=sys.stderr)
        return 2
    sha = imported.provenance["sha256"]
    out = args.out or paths.imported_dir() / importer.cache_key(sha, args.kind, normalisation, args.image_size,
                                                                args.num_heads)  # fmt: skip
    importer.save(imported, out)
    record = provenance.record(cfg, "import-weights", started, imported=imported.provenance)
    provenance.write_json(provenance.provenance_path(out), record)
    for line in _import_summary(imported.provenance):
        print(f"[import-weights] {line}")
    print(f"[import-weights] {args.kind} checkpoint written in {time.perf_counter() - start:.1f} s: {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fahr",
        description="FAHR-Face, reproduced: data, pretraining, fine-tuning, evaluation and the book.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = {"synth": cmd_synth, "prepare": cmd_prepare, "align": cmd_align, "shard": cmd_shard,
                "pretrain": cmd_train, "finetune-age": cmd_train, "finetune-survival": cmd_train,
                "predict": cmd_predict, "evaluate": cmd_evaluate}  # fmt: skip
    for stage, help_text in STAGES.items():
        p = sub.add_parser(stage, help=help_text, description=help_text)
        _profile_args(p)
        p.set_defaults(func=commands[stage])
    synth = sub.choices["synth"]
    synth.add_argument("--cohort", action="append", help="only this cohort (repeatable); default: all")
    synth.add_argument("--force", action="store_true", help="render even if the cohort is up to date (with --export: "
                       "replace a previous export in DIR instead; cohorts are rendered only if stale)")  # fmt: skip
    synth.add_argument("--export", type=Path, metavar="DIR", help="write the cohorts into DIR (new or empty) in the "
                       "real datasets' own formats, for `fahr prepare` (DIR/README.txt says how)")  # fmt: skip
    sub.choices["prepare"].add_argument(
        "--cohort", action="append", choices=("pretrain", "age", "clinical-a", "clinical-b", "pairs"),
        help="only this cohort (repeatable); default: all (the optional paired set only when it is there)",
    )  # fmt: skip
    aligner = sub.choices["align"]
    aligner.add_argument("photos", type=Path, help="folder of raw photos (searched recursively)")
    aligner.add_argument("out", type=Path, help="folder for the aligned crops (same relative names) and align.csv")
    aligner.add_argument("--size", type=int, default=112, help="crop size in pixels (default 112, the paper's)")
    for stage in ("finetune-age", "finetune-survival"):
        tuner = sub.choices[stage]
        tuner.add_argument("--scratch", action="store_true", help="start from random weights, not the MAE encoder")
        tuner.add_argument("--fraction", type=float, default=1.0, help="share of the labelled training data to use")
    predictor = sub.choices["predict"]
    predictor.add_argument("photos", type=Path, nargs="+", help="photos, folders of photos, or .txt lists of paths")
    predictor.add_argument(
        "--faceage", type=Path, required=True,
        help="FaceAge checkpoint (faceage-stage2.pt), or the authors' fahr_faceage.pth (imported on the fly, cached)",
    )  # fmt: skip
    predictor.add_argument("--facesurvival", type=Path, help="FaceSurvival checkpoint (facesurvival.pt)")
    predictor.add_argument("-o", "--output", type=Path, required=True, help="the CSV to write")
    for name in ("prepare", "align", "predict"):
        sub.choices[name].add_argument(
            "--workers", type=int, default=None, metavar="N",
            help="processes that detect and align faces (default: every core); a killed run resumes where it stopped",
        )  # fmt: skip
    sharder = sub.choices["shard"]
    source = sharder.add_mutually_exclusive_group()
    source.add_argument("--cohort", default="pretrain", help="a FAHR-Synth cohort of the profile (default pretrain)")
    source.add_argument("--manifest", type=Path, help="any manifest (.parquet or .csv) instead of a cohort")
    sharder.add_argument(
        "--out", type=Path, help="folder for the shards (default: artifacts/<profile>/shards/<cohort>)"
    )
    sharder.add_argument("--maxcount", type=int, default=10_000, help="photos per shard")
    p = sub.add_parser("import-weights", help="import a published checkpoint (fahr_face.pth, fahr_faceage.pth)",
                       description="Import the authors' published FAHR-Face or FAHR-FaceAge checkpoint into the "
                       "project's timm encoder and FaceAge head (docs/published-models.md).")  # fmt: skip
    _profile_args(p)
    p.add_argument("file", type=Path, help="the published .pth file")
    p.add_argument("--as", dest="kind", required=True, choices=("foundation", "faceage"),
                   help="foundation: the MAE encoder (fahr_face.pth); faceage: encoder and age head "
                   "(fahr_faceage.pth)")  # fmt: skip
    p.add_argument("--out", type=Path, help="checkpoint to write (default: artifacts/imported/<sha256>-<kind>-….pt)")
    p.add_argument("--image-size", type=int, help="input size in pixels (default: the file's own; another size "
                   "resizes the position embedding, with a warning)")  # fmt: skip
    p.add_argument("--num-heads", type=int, help="attention heads (default: width / 64; the file does not say)")
    p.add_argument("--normalisation", choices=("imagenet", "half", "none"),
                   help="input normalisation the file expects (default: the profile's "
                   "published.normalisation)")  # fmt: skip
    p.set_defaults(func=cmd_import_weights)
    p = sub.add_parser("config", help="print the resolved config of a profile and its hash")
    _profile_args(p)
    p.set_defaults(func=cmd_config)
    p = sub.add_parser("book", help="execute the chapters that changed and render the HTML book")
    _profile_args(p)
    p.add_argument("--force", action="store_true", help="execute every chapter and render even if unchanged")
    p.add_argument("--no-html", action="store_true", help="execute the chapters only, render nothing")
    p.set_defaults(func=cmd_book)
    p = sub.add_parser("spread", help="rebuild the chapters with other seeds and show each number's spread")
    _profile_args(p)
    p.add_argument("--seeds", type=int, default=3, help="seeds in all, the build's own included (default 3)")
    p.add_argument("--cpus", type=_names, default=[], metavar="NAME,..",
                   help="also rebuild with the build's own seed on these emulated CPUs, comma-separated: avx2 (no "
                   "AVX-512), generic (no vector units beyond SSE4); default none")  # fmt: skip
    p.set_defaults(func=cmd_spread)
    p = sub.add_parser("chapter", help="re-execute one chapter (with other parameters) and re-render the book")
    p.add_argument("name", help="chapter name, e.g. reproducibility")
    _profile_args(p)
    p.set_defaults(func=cmd_book, force=False)
    p = sub.add_parser("crosspath", help="on a tree written by `fahr synth --export`: do the real-data path's labels, "
                       "FaceAge error and hazard ratios agree with FAHR-Synth's own on the same photos?")  # fmt: skip
    _profile_args(p)
    p.add_argument("--synth", type=Path, help="the FAHR-Synth cohorts that were exported (default: the folder "
                   "the export recorded, artifacts/<profile>/synth where `fahr synth --export` ran)")  # fmt: skip
    p.set_defaults(func=cmd_crosspath)
    p = sub.add_parser("verdicts", help="recompute every verdict of a built book from its score files; judge any "
                       "model's predictions by the paper's rules (--scores)",
                       description="Recompute the reproduction report's verdicts from the scores the chapters wrote "
                       "(artifacts/<profile>/scores/). --export-scores writes them as one CSV; --scores reads such "
                       "a CSV (any subset of rows and model columns) in place of the build's own "
                       "predictions.")  # fmt: skip
    _profile_args(p)
    p.add_argument("--export-scores", type=Path, metavar="FILE", help="write the scores the verdicts use (CSV)")
    p.add_argument("--scores", type=Path, metavar="FILE", help="a scores CSV whose predictions replace the build's")
    p.add_argument("--adversaries", action="store_true", help="also show what each lesser model gets")
    p.add_argument("--evidence", action="store_true", help="show each verdict's numbers in words")
    p.add_argument("-o", "--output", type=Path, help="write the verdict table as CSV")
    p.set_defaults(func=cmd_verdicts)
    p = sub.add_parser("bench", help="run the benchmarks and write a table to the artifacts folder")
    _profile_args(p)
    p.add_argument("--only", help="run only the benchmarks whose name contains this text")
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("publish", help="push the rendered book to the gh-pages branch (refuses a stale or unsafe book)")
    p.add_argument("--profile", default="demo", help="the book to publish: demo (default) or paper")
    p.add_argument("--remote", default="origin", help="git remote to push to (default origin)")
    p.add_argument("--branch", default="gh-pages", help="branch that holds the site (default gh-pages)")
    p.add_argument("--allow-clinical", action="store_true", help="publish a book built on real clinical cohorts")
    p.set_defaults(func=cmd_publish)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if os.environ.get("FAHR_ARTIFACTS"):  # absolute, so that chapter kernels (run in notebooks/) and child
        os.environ["FAHR_ARTIFACTS"] = str(Path(os.environ["FAHR_ARTIFACTS"]).resolve())  # processes agree
    try:
        return args.func(args)
    except (config.ConfigError, RealDataError, ManifestError, CheckpointError) as err:
        print(f"fahr {args.command}: {err}", file=sys.stderr)
        return 2
    except ChapterFailed as err:
        print(f"fahr {args.command}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
