"""Join results folders: the shards of one run (``--shard I/N``), or sittings on several machines.

:func:`merged_view` reads several folders into one :class:`ResultView` (what the report reads);
:func:`merge_folders` also writes them as one results folder, under its lock, through the store's
writers. Folders whose records differ in profile, seed, commit or a claim's dtype
(:func:`claims.schema.identity_of`, the rule a run applies to its folder) are refused unless
``allow_mixed`` (their verdicts are not evidence about one thing); a cell
present in two folders must have the same verdict in both (else refused, naming the cell), and is
kept once. The merged ``_run.json`` lists every folder's run as a shard, with the union of workers;
its wall time is the longest shard's (shards run side by side) and ``cpu_s`` the sum.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from claims.schema import SCHEMA, count_verdicts, identity_of, order_claims
from claims.store import LoadedResults, ResultsFolder, load_results, per_claim_summary, results_dir_of

__all__ = ["ResultView", "known_claim_ids", "merged_view", "merge_folders"]


@dataclass
class ResultView:
    """Records (valid, one per cell), the run metadata, and the files that could not be used."""

    records: list[dict]
    run: dict
    invalid: list[tuple[Path, str]] = field(default_factory=list)
    roots: list[Path] = field(default_factory=list)

    @property
    def root(self) -> Path | None:
        return self.roots[0] if self.roots else None


def known_claim_ids(registry: str | None = None) -> list[str] | None:
    """Ids of the registry's claims, or None when the registry cannot be imported (the report then
    accepts any claim id and says so)."""
    try:
        from claims.registry import resolve_registry

        return resolve_registry(registry).ids()
    except Exception:
        return None


def _identity(loaded: LoadedResults) -> dict[str, set]:
    out: dict[str, set] = {"profile": set(), "seed": set(), "commit": set()}
    for r in loaded.records:
        ident = identity_of(r)
        for what in out:
            if ident[what] is not None:
                out[what].add(ident[what])
    return out


def merged_view(dirs: Iterable[str | os.PathLike], *, allow_mixed: bool = False,
                registry: str | None = None) -> ResultView:
    """Read ``dirs`` into one view (see the module docstring); a single folder is read as it is."""
    dirs = list(dirs)
    if not dirs:
        raise ValueError("give at least one results folder")
    known = known_claim_ids(registry)
    loaded: list[tuple[Path, LoadedResults]] = []
    for d in dirs:
        root = results_dir_of(d)
        if not root.is_dir():
            raise FileNotFoundError(f"results folder {str(d)!r} does not exist")
        loaded.append((root, load_results(root, known)))
    if len(loaded) == 1:
        root, one = loaded[0]
        return ResultView(one.records, one.run, list(one.invalid), [root])
    identities = {root: _identity(res) for root, res in loaded}
    dtypes: dict[str, dict[str, Path]] = {}  # claim -> dtype -> a folder (claims may differ from each other)
    for root, res in loaded:
        for r in res.records:
            dtypes.setdefault(r["claim"], {}).setdefault(str(identity_of(r)["dtype"]), root)
    mixed = {c: d for c, d in dtypes.items() if len(d) > 1}
    if mixed and not allow_mixed:
        claim, seen = next(iter(mixed.items()))
        detail = "; ".join(f"{folder}: {dtype}" for dtype, folder in seen.items())
        raise ValueError(f"the folders ran {claim} in different dtypes ({detail}); pass --allow-mixed to merge them anyway")
    for what in ("profile", "seed", "commit"):
        values = set().union(*(ids[what] for ids in identities.values()))
        if len(values) > 1 and not allow_mixed:
            detail = "; ".join(f"{root}: {', '.join(map(str, sorted(ids[what], key=str)))}"
                               for root, ids in identities.items() if ids[what])
            raise ValueError(f"the folders hold results of different {what}s ({detail}); "
                             f"pass --allow-mixed to merge them anyway")
    by_key: dict[tuple[str, str], tuple[Path, dict]] = {}
    invalid: list[tuple[Path, str]] = []
    for root, res in loaded:
        invalid.extend(res.invalid)
        for r in res.records:
            key = (r["claim"], r["cell_key"])
            if key in by_key:
                other_root, other = by_key[key]
                if other.get("verdict") != r.get("verdict") and not allow_mixed:
                    raise ValueError(f"cell {key[0]}/{key[1]} is in {other_root} ({other['verdict']}) and in "
                                     f"{root} ({r['verdict']}); pass --allow-mixed to keep the first")
                continue
            by_key[key] = (root, r)
    records = [r for _, r in by_key.values()]
    runs = [res.run for _, res in loaded if res.run]
    order = order_claims({r["claim"] for r in records},
                         [c for run in runs for c in run.get("claims", [])] or known or ())
    rank = {c: i for i, c in enumerate(order)}
    records.sort(key=lambda r: (rank[r["claim"]], r["cell_key"]))
    meta = _merged_meta(runs, records, order, [root for root, res in loaded if res.run])
    return ResultView(records, meta, invalid, [root for root, _ in loaded])


def _merged_meta(runs: list[dict], records: list[dict], order: list[str], roots: list[Path]) -> dict:
    first = runs[0] if runs else {}
    shards = []
    for root, run in zip(roots, runs):
        shards.append({"folder": str(root), "shard": run.get("shard"), "wall_s": run.get("wall_s"),
                       "cells_on_disk": run.get("cells_on_disk"), "complete": run.get("complete"),
                       "interrupted": run.get("interrupted"), "executor": run.get("executor")})
    per_claim = per_claim_summary(records, order)
    shard_ids = sorted({tuple(run["shard"]) for run in runs if run.get("shard")})
    n_shards = {n for _, n in shard_ids}
    covered = len(n_shards) == 1 and {i for i, _ in shard_ids} == set(range(1, next(iter(n_shards)) + 1))
    return {
        "schema": SCHEMA,
        "source": "rnnclaims merge",
        "profile": first.get("profile") or (records[0]["profile"] if records else None),
        "profile_settings": first.get("profile_settings"),
        "seed": first.get("seed", 0),
        "dtype": first.get("dtype"),
        "claims": order,
        "shards": shards,
        "shards_cover_run": covered,
        "workers": [w for run in runs for w in run.get("workers", [])],
        "started": min((run.get("started") for run in runs if run.get("started")), default=None),
        "finished": max((run.get("finished") for run in runs if run.get("finished")), default=None),
        "wall_s": max((float(run.get("wall_s") or 0) for run in runs), default=0.0),
        "cpu_s": sum(float(r.get("duration_s") or 0) for r in records),
        "per_claim": per_claim,
        "per_claim_wall_s": {c: v["seconds"] for c, v in per_claim.items()},
        "cells_on_disk": len(records),
        "verdicts": count_verdicts(records),
        "interrupted": any(run.get("interrupted") for run in runs),
        "complete": all(run.get("complete") for run in runs) and (covered or not shard_ids),
        "versions": first.get("versions"),
        "git_commit": first.get("git_commit"),
    }


def merge_folders(dirs: Iterable[str | os.PathLike], out: str | os.PathLike, *, allow_mixed: bool = False,
                  registry: str | None = None) -> tuple[Path, ResultView]:
    """Write the merged view of ``dirs`` as ``out/results`` under the folder's lock (refuses a non-empty
    target); returns the results folder and the view."""
    view = merged_view(dirs, allow_mixed=allow_mixed, registry=registry)
    with ResultsFolder(out) as folder:
        folder.acquire("rnnclaims merge")
        if any(p for p in folder.path.iterdir() if not p.name.startswith(".")):
            raise ValueError(f"--out {out!r} already holds results; merge into an empty folder")
        for r in view.records:
            folder.write(r)
        folder.write_meta(view.run)
    return folder.path, view
