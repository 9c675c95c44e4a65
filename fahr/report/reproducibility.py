"""Tables for the Reproducibility chapter: the resolved config, provenance, environment and timings."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from fahr.core import envfiles, paths, provenance
from fahr.core.config import Config
from fahr.report import book


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_table(cfg: Config) -> pd.DataFrame:
    """One row per resolved config key (dotted), with its value and the profile file's value."""
    import yaml

    from_file = _flatten(yaml.safe_load(paths.CONFIGS.joinpath(f"{cfg.profile}.yaml").read_text()))
    rows = [
        {"key": key, "value": value, "overridden": from_file.get(key) != value}
        for key, value in _flatten(cfg.to_dict()).items()
    ]
    return pd.DataFrame(rows).set_index("key")


def provenance_table(record: dict[str, Any]) -> pd.DataFrame:
    """The scalar fields of a provenance record as a two-column table."""
    rows = {
        "profile": record["profile"],
        "config hash": record["config_hash"],
        "git commit": record["git"]["commit"],
        "uncommitted changes": record["git"]["dirty"],
        "device": record["device"],
        "seed": record["seed"],
        "started (UTC)": record["started"],
        "ended (UTC)": record["ended"],
    }
    return pd.DataFrame({"value": rows}).rename_axis("field")


def hardware_table(record: dict[str, Any]) -> pd.DataFrame:
    hw = dict(record["hardware"])
    hw["gpus"] = ", ".join(hw["gpus"]) or "none"
    return pd.DataFrame({"value": hw}).rename_axis("field")


def environment_against_lock() -> pd.DataFrame:
    """Every locked package with its locked and installed version, and whether they agree."""
    installed = {envfiles.canonical(k): v for k, v in provenance.all_package_versions().items()}
    rows = [
        {
            "package": name,
            "locked": version,
            "installed": installed.get(name),
            "matches": installed.get(name) == version,
        }
        for name, version in envfiles.lock_pins().items()
    ]
    return pd.DataFrame(rows).set_index("package")


def lock_agreement(environment: pd.DataFrame) -> str:
    """A Markdown sentence on how many locked packages are installed exactly, naming those that are not."""
    differ = environment[~environment["matches"]]
    exact = len(environment) - len(differ)
    text = f"{exact} of {len(environment)} locked packages are installed at exactly the locked version."
    if len(differ):
        text += (
            " Different: " + ", ".join(f"`{n}` {r.installed} (locked {r.locked})" for n, r in differ.iterrows()) + "."
        )
    return text


def timings_table(profile: str, exclude: str | None = None) -> pd.DataFrame:
    """Seconds each chapter of this profile's book took when it was last executed (in execution order)."""
    path = book.timings_path(profile)
    timings = json.loads(path.read_text()) if path.is_file() else {}
    rows = [{"chapter": name, **timings[name]} for name in book.CHAPTERS if name in timings and name != exclude]
    return pd.DataFrame(rows, columns=["chapter", "seconds", "executed_at"]).set_index("chapter")


def rerun_commands(name: str, cfg: Config, example: str = "seed=1") -> str:
    """The commands that re-execute chapter ``name`` of this profile with another value (Markdown)."""
    key, _, value = example.partition("=")
    return "\n".join([
        "```bash",
        "# re-execute this chapter with another value, then re-render the book",
        f"make chapter NB={name} PROFILE={cfg.profile} SET=\"{example}\"",
        "# or the same through the CLI, or with papermill directly (output anywhere you like)",
        f"fahr chapter {name} --profile {cfg.profile} --set {example}",
        f"papermill notebooks/{name}.ipynb /tmp/{name}.ipynb -p profile {cfg.profile} \\",
        f"    -y \"overrides: {{{key}: {value}}}\"",
        "```",
    ])  # fmt: skip


def packages_table(record: dict[str, Any]) -> pd.DataFrame:
    """The versions of the packages the results depend on most, from a provenance record."""
    return pd.DataFrame({"version": record["packages"]}).rename_axis("package")


def imported_table(profile: str) -> pd.DataFrame:
    """One row per published checkpoint this build imported in place of training a model (``pretrain.weights``,
    ``faceage.weights``): the model it became, the file, its SHA-256, the layout found and what was assumed.
    Empty (with the columns) when every model was trained here."""
    columns = ["model", "file", "sha256", "layout", "ViT", "age head", "normalisation (assumed)", "imported"]
    rows = []
    for done in sorted(paths.stage_dir(profile, "models").glob("*/done.json")):
        record = json.loads(done.read_text())
        p = record.get("imported")
        if not p:
            continue
        c = p["file_config"]
        rows.append({
            "model": done.parent.name, "file": p["source"], "sha256": p["sha256"],
            "layout": p["layout"] + (f" ({p['hf_naming']} names)" if p.get("hf_naming") else ""),
            "ViT": f"{c['depth']}×{c['embed_dim']}, patch {c['patch_size']}, {c['image_size']} px"
                   + (f" → {p['image_size']} px" if p.get("position_embedding_resized") else ""),
            "age head": p["age_head"] or "none (foundation encoder)",
            "normalisation (assumed)": p["normalisation"]["name"], "imported": record.get("ended", ""),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=columns).set_index("model")


def imported_sentence(table: pd.DataFrame) -> str:
    """What the imported-models table says, in words."""
    if table.empty:
        return ("No published checkpoint was imported in this build: every model in it was trained here. Set "
                "`pretrain.weights` or `faceage.weights` to evaluate the authors' files "
                "(`docs/published-models.md`).")  # fmt: skip
    names = ", ".join(f"`{m}` from `{row.file}` (SHA-256 `{row.sha256[:12]}…`)" for m, row in table.iterrows())
    return (
        f"This build evaluates published weights, not models trained here: {names}. The hash identifies the "
        "exact file; the layout and the input normalisation are what the importer found and assumed."
    )
