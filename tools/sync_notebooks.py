"""Keep the Chinese tutorials' code cells identical to the English ones.

Every English notebook ``tutorials/NN_name.ipynb`` has a Chinese twin ``tutorials/zh/NN_name.ipynb``
with the same code cells in the same order, its own (Chinese) markdown cells, and zh-only cells
tagged ``zh-only`` (the setup cell that turns the figures' labels into Chinese). ``tests/test_zh.py``
fails when the code cells differ; this tool fixes that after an English code cell was edited.

    python tools/sync_notebooks.py            # report differences, change nothing (exit 1 if any)
    python tools/sync_notebooks.py --write    # copy the English code cells into the zh twins
    python tools/sync_notebooks.py --write --execute 07 08   # ... then re-run those zh notebooks

``--write`` copies code by position (the k-th code cell of the English notebook into the k-th
non-zh-only code cell of its twin), keeps every zh markdown cell, and clears the outputs of the
cells it changed. It refuses a notebook whose number of code cells differs from its twin's (a cell
was added or removed): it reports which English cells (by cell id) have no twin, and a person
adds or removes the cell in the zh notebook, with its Chinese prose, then runs ``--write`` again.

``--execute`` runs the given zh notebooks (all with ``--execute all``) top to bottom in place, in
full mode unless ``MINISE_FAST=1`` is set, with the notebook's folder as working directory, and
removes this machine's absolute paths from the outputs before saving.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EN_DIR = ROOT / "tutorials"
ZH_DIR = EN_DIR / "zh"
ZH_ONLY = "zh-only"


def is_zh_only(cell: dict) -> bool:
    return ZH_ONLY in cell.get("metadata", {}).get("tags", [])


def source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def shared_code_cells(nb: dict) -> list[dict]:
    """The code cells both languages share: every code cell except those tagged ``zh-only``."""
    return [c for c in nb["cells"] if c["cell_type"] == "code" and not is_zh_only(c)]


def pairs() -> list[tuple[Path, Path]]:
    """(English notebook, its zh twin path) for every numbered English tutorial."""
    return [(en, ZH_DIR / en.name) for en in sorted(EN_DIR.glob("[0-9][0-9]_*.ipynb"))]


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def write(path: Path, nb: dict) -> None:
    path.write_text(json.dumps(nb, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def differences(en: dict, zh: dict) -> tuple[bool, list[str]]:
    """(structure matches, human-readable differences) between the shared code cells."""
    a, b = shared_code_cells(en), shared_code_cells(zh)
    problems = []
    if len(a) != len(b):
        problems.append(f"{len(a)} code cells in English, {len(b)} in zh (besides zh-only cells)")
        zh_ids = {c.get("id") for c in b}
        en_ids = {c.get("id") for c in a}
        for k, cell in enumerate(a):
            if cell.get("id") not in zh_ids:
                first = source(cell).strip().splitlines()[:1]
                problems.append(f"  English code cell {k} (id {cell.get('id')}) has no zh twin: "
                                f"{first[0] if first else '(empty)'!r}")
        for k, cell in enumerate(b):
            if cell.get("id") not in en_ids:
                problems.append(f"  zh code cell {k} (id {cell.get('id')}) has no English twin")
        return False, problems
    for k, (x, y) in enumerate(zip(a, b)):
        if source(x) != source(y):
            first = next((i for i, (p, q) in enumerate(zip(source(x).splitlines() + [""],
                                                              source(y).splitlines() + [""])) if p != q), 0)
            problems.append(f"code cell {k} differs (first at line {first + 1})")
    return True, problems


def sync(en: dict, zh: dict) -> list[int]:
    """Copy the English code into ``zh`` in place; the positions of the cells it changed."""
    changed = []
    for k, (x, y) in enumerate(zip(shared_code_cells(en), shared_code_cells(zh))):
        if source(x) != source(y):
            y["source"] = copy.deepcopy(x["source"])
            y["outputs"] = []
            y["execution_count"] = None
            changed.append(k)
    return changed


def scrub_paths(nb: dict, folder: Path) -> None:
    """Replace this machine's absolute paths in text outputs by relative ones (and the home folder by ~)."""
    replacements = [(str(folder) + os.sep, ""), (str(folder), "."), (str(ROOT) + os.sep, ""), (str(ROOT), "."),
                    (str(Path.home()), "~")]

    def fix(text):
        for old, new in replacements:
            text = text.replace(old, new)
        return text

    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = fix(source({"source": out["text"]}))
            for mime, value in out.get("data", {}).items():
                if mime.startswith("text/") and isinstance(value, (str, list)):
                    out["data"][mime] = fix(source({"source": value}))


def execute(path: Path, timeout: int = 1800) -> float:
    """Run ``path`` top to bottom in place; seconds taken."""
    import time

    import nbclient
    import nbformat

    # figures must end up in the outputs: Jupyter's inline backend, whatever the caller's MPLBACKEND
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    data = json.loads(nbformat.writes(nb))
    scrub_paths(data, path.parent)
    write(path, data)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="copy English code cells into the zh twins")
    parser.add_argument("--execute", nargs="*", metavar="NN",
                        help="re-run these zh notebooks (by number, e.g. 03 07, or 'all') after syncing")
    args = parser.parse_args(argv)

    status = 0
    for en_path, zh_path in pairs():
        if not zh_path.exists():
            print(f"{zh_path.relative_to(ROOT)}: missing (every English tutorial needs a zh twin)")
            status = 1
            continue
        en, zh = read(en_path), read(zh_path)
        same_shape, problems = differences(en, zh)
        if not problems:
            continue
        name = zh_path.relative_to(ROOT)
        if not same_shape:
            print(f"{name}: structure differs from {en_path.relative_to(ROOT)}; add or remove the cells "
                  "in the zh notebook by hand (with their Chinese prose), then run --write:")
            print("\n".join(problems))
            status = 1
        elif args.write:
            changed = sync(en, zh)
            write(zh_path, zh)
            print(f"{name}: copied code cells {changed} from English; their outputs were cleared "
                  f"(re-run with --execute {zh_path.name[:2]})")
        else:
            print(f"{name}: " + "; ".join(problems) + " (run python tools/sync_notebooks.py --write)")
            status = 1
    for en_path in sorted(ZH_DIR.glob("[0-9][0-9]_*.ipynb")):
        if not (EN_DIR / en_path.name).exists():
            print(f"{en_path.relative_to(ROOT)}: has no English twin tutorials/{en_path.name}")
            status = 1

    if args.execute is not None:
        wanted = args.execute
        for _, zh_path in pairs():
            if zh_path.exists() and ("all" in wanted or zh_path.name[:2] in wanted):
                seconds = execute(zh_path)
                print(f"executed {zh_path.relative_to(ROOT)} in {seconds:.0f} s "
                      f"({'fast' if os.environ.get('MINISE_FAST') == '1' else 'full'} mode)")
    return status


if __name__ == "__main__":
    sys.exit(main())
