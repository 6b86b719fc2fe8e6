"""The documentation site builds strictly and covers the whole public API contract.

Oracles: ``mkdocs build --strict`` (fails on any warning: a broken link, a missing page or
figure, an API entry that names something the code does not have), the list of public names
below (taken from DESIGN.md's "Public API contract"), the anchors the op docstrings link to,
and the notebooks that exist in ``tutorials/``.
"""

import importlib
import importlib.util
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
API = DOCS / "api"

# public name -> (the identifier its entry uses in docs/api, members the built page must show).
# The identifier differs from the public name only where a submodule has the same name as the
# function it exports (minise/functional/linear.py defines F.linear, minise/tensor.py ms.tensor).
CONTRACT = {
    "minise.Tensor": ("minise.Tensor", [
        "data", "grad", "requires_grad", "backward", "numpy", "item", "shape", "dtype", "device",
        "to", "detach", "reshape", "transpose", "permute", "T", "sum", "mean", "max", "min",
        "exp", "log", "sqrt", "abs", "size", "numel", "unsqueeze", "squeeze", "clone", "view",
    ]),
    "minise.tensor": ("minise.tensor.tensor", []),
    **{f"minise.{name}": (f"minise.creation.{name}", [])
       for name in ("zeros", "ones", "rand", "randn", "arange", "from_numpy")},
    "minise.cat": ("minise.functional.cat", []),
    "minise.stack": ("minise.functional.stack", []),
    "minise.save_safetensors": ("minise.io.safetensors_bridge.save_safetensors", []),
    "minise.load_safetensors": ("minise.io.safetensors_bridge.load_safetensors", []),
    "minise.models.resnet50": ("minise.models.resnet50", []),
    "minise.models.se_resnet50": ("minise.models.se_resnet50", []),
    "minise.Function": ("minise.Function", ["forward", "backward", "save_for_backward"]),
    "minise.no_grad": ("minise.no_grad", []),
    "minise.manual_seed": ("minise.manual_seed", []),
    "minise.save": ("minise.save", []),
    "minise.load": ("minise.load", []),
    "minise.gradcheck": ("minise.gradcheck", []),
    "minise.GradcheckError": ("minise.GradcheckError", []),
    "minise.trace_backward": ("minise.trace_backward", []),
    "minise.step_backward": ("minise.step_backward", []),
    "minise.detect_anomaly": ("minise.detect_anomaly", []),
    "minise.viz.to_dot": ("minise.viz.to_dot", []),
    "minise.functional.linear": ("minise.functional.linear.linear", []),
    "minise.functional.conv2d": ("minise.functional.conv2d", []),
    "minise.functional.max_pool2d": ("minise.functional.max_pool2d", []),
    "minise.functional.avg_pool2d": ("minise.functional.avg_pool2d", []),
    "minise.functional.global_avg_pool2d": ("minise.functional.global_avg_pool2d", []),
    "minise.functional.batch_norm": ("minise.functional.batch_norm", []),
    "minise.functional.relu": ("minise.functional.relu", []),
    "minise.functional.sigmoid": ("minise.functional.sigmoid", []),
    "minise.functional.tanh": ("minise.functional.tanh", []),
    "minise.functional.softmax": ("minise.functional.softmax", []),
    "minise.functional.log_softmax": ("minise.functional.log_softmax", []),
    "minise.functional.cross_entropy": ("minise.functional.cross_entropy", []),
    "minise.functional.exp": ("minise.functional.exp", []),
    "minise.functional.log": ("minise.functional.log", []),
    "minise.nn.Module": ("minise.nn.Module", [
        "parameters", "named_parameters", "state_dict", "load_state_dict", "train", "eval", "to",
        "zero_grad",
    ]),
    "minise.nn.Parameter": ("minise.nn.Parameter", []),
    "minise.nn.Sequential": ("minise.nn.Sequential", []),
    "minise.nn.Linear": ("minise.nn.Linear", []),
    "minise.nn.Conv2d": ("minise.nn.Conv2d", []),
    "minise.nn.BatchNorm2d": ("minise.nn.BatchNorm2d", []),
    "minise.nn.ReLU": ("minise.nn.ReLU", []),
    "minise.nn.Sigmoid": ("minise.nn.Sigmoid", []),
    "minise.nn.Flatten": ("minise.nn.Flatten", []),
    "minise.nn.SEBlock": ("minise.nn.SEBlock", [
        "fc1", "fc2", "squeeze", "excite", "reweight", "forward", "last_excitation",
    ]),
    **{f"minise.models.{name}{depth}": (f"minise.models.{name}{depth}", [])
       for name in ("resnet", "se_resnet") for depth in (20, 32, 44, 56, 110)},
    "minise.optim.SGD": ("minise.optim.SGD", []),
    "minise.optim.Adam": ("minise.optim.Adam", []),
    "minise.optim.Optimizer": ("minise.optim.Optimizer", [
        "step", "zero_grad", "state_dict", "load_state_dict",
    ]),
    "minise.optim.lr_scheduler.MultiStepLR": ("minise.optim.lr_scheduler.MultiStepLR", []),
    "minise.optim.lr_scheduler.CosineAnnealingLR": ("minise.optim.lr_scheduler.CosineAnnealingLR", []),
    "minise.data.CIFAR10": ("minise.data.CIFAR10", []),
    "minise.data.FashionMNIST": ("minise.data.FashionMNIST", []),
    "minise.data.DataLoader": ("minise.data.DataLoader", []),
}


def _resolve(dotted):
    """Import the longest module prefix of ``dotted`` and getattr the rest."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


def _api_directives():
    """Every ``::: identifier`` line of the API reference pages."""
    found = set()
    for page in API.glob("*.md"):
        found.update(re.findall(r"^:::\s+(\S+)", page.read_text(encoding="utf-8"), flags=re.M))
    return found


def test_every_public_name_of_the_contract_exists_in_the_package():
    missing = []
    for name in CONTRACT:
        try:
            _resolve(name)
        except (ImportError, AttributeError) as exc:
            missing.append(f"{name} ({exc})")
    assert not missing, "public names promised by DESIGN.md are missing: " + ", ".join(missing)


def test_api_reference_has_an_entry_for_every_public_name_of_the_contract():
    directives = _api_directives()
    missing = [name for name, (ident, _) in CONTRACT.items() if ident not in directives]
    assert not missing, f"no '::: name' entry in docs/api/*.md for: {', '.join(missing)}"


def test_every_api_entry_names_an_object_that_exists():
    broken = []
    for ident in sorted(_api_directives()):
        try:
            _resolve(ident)
        except (ImportError, AttributeError) as exc:
            broken.append(f"{ident} ({exc})")
    assert not broken, "docs/api entries name objects the code does not have: " + ", ".join(broken)


def _markdown_anchors(page):
    return set(re.findall(r"\{#([A-Za-z0-9_-]+)\}", page.read_text(encoding="utf-8")))


def test_derivation_links_in_docstrings_and_notebooks_point_to_existing_anchors():
    anchors = _markdown_anchors(DOCS / "derivations.md")
    links = {}
    sources = list((ROOT / "minise").rglob("*.py")) + list((ROOT / "tutorials").glob("*.ipynb"))
    for path in sources:
        for anchor in re.findall(r"derivations(?:\.md|/)#([A-Za-z0-9_-]+)", path.read_text(encoding="utf-8")):
            links.setdefault(anchor, []).append(path.relative_to(ROOT).as_posix())
    assert links, "expected the op docstrings to link to docs/derivations.md#..."
    dangling = {a: files for a, files in links.items() if a not in anchors}
    assert not dangling, f"links to derivations.md anchors that do not exist: {dangling}"


def test_tutorials_page_lists_every_notebook():
    page = (DOCS / "tutorials.md").read_text(encoding="utf-8")
    notebooks = sorted(p.name for p in (ROOT / "tutorials").glob("[0-9][0-9]_*.ipynb"))
    unlisted = [name for name in notebooks if f"`{name}`" not in page]
    assert not unlisted, f"docs/tutorials.md does not list: {unlisted}"


def _fenced_commands(text):
    """Lines of ```bash blocks, without comments."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split("#")[0].strip()
            if line:
                lines.append(line)
    return lines


def test_quickstart_page_runs_the_same_commands_as_the_readme_quickstart():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Quickstart\n(.*?)(?=^## )", readme, flags=re.S | re.M)
    assert section, "README.md has no '## Quickstart' section"
    readme_commands = [c for c in _fenced_commands(section.group(1)) if c.startswith(("pip ", "minise train"))]
    assert any(c.startswith("minise train") for c in readme_commands), "README quickstart has no `minise train`"
    docs_commands = _fenced_commands((DOCS / "quickstart.md").read_text(encoding="utf-8"))
    setup = [c for c in docs_commands if c.startswith(("pip ", "minise train"))]
    assert setup[:len(readme_commands)] == readme_commands


def test_quickstart_python_examples_run_and_give_what_their_comments_say(capsys):
    import numpy as np

    page = (DOCS / "quickstart.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    assert len(blocks) == 2, "expected the autograd example and the SE block example"
    autograd, ns = {}, {}
    exec(compile(blocks[0], "docs/quickstart.md", "exec"), autograd)
    exec(compile(blocks[1], "docs/quickstart.md", "exec"), ns)
    # first block: "print(x.grad)  # 2 * x"
    np.testing.assert_array_equal(autograd["x"].grad.numpy(), 2 * autograd["x"].numpy())
    # second block: three steps == one call, gates in (0, 1), (N, C) excitations kept
    np.testing.assert_array_equal(ns["out"].numpy(), ns["y"].numpy())
    s = ns["s"].numpy()
    assert s.shape == (2, 64) and (s > 0).all() and (s < 1).all()
    assert ns["se"].fc1.weight.shape == (4, 64) and ns["se"].fc2.weight.shape == (64, 4)
    assert isinstance(ns["se"].last_excitation, np.ndarray) and ns["se"].last_excitation.shape == (2, 64)
    assert capsys.readouterr().out.endswith("0.0\n(2, 64)\n")


def test_figure_script_redraws_every_committed_figure_as_svg(tmp_path):
    pytest.importorskip("matplotlib")
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        make_figures = importlib.import_module("make_figures")
    finally:
        sys.path.remove(str(ROOT / "tools"))
    assert make_figures.main(["--out", str(tmp_path)]) == 0
    drawn = sorted(p.name for p in tmp_path.glob("*.svg"))
    committed = sorted(p.name for p in (DOCS / "figures").glob("*.svg"))
    assert drawn == committed
    for name in drawn:
        labels = _svg_labels(tmp_path / name)
        assert len(labels) > 3, f"{name} has no labels"
        # exact bytes depend on the matplotlib version; the labels and their drawing order do not
        assert labels == _svg_labels(DOCS / "figures" / name), (
            f"docs/figures/{name} is out of date: run python tools/make_figures.py")


def _svg_labels(path):
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg"), f"{path} is not an SVG"
    return ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]


# --- the real build ---------------------------------------------------------------
_DOCS_MODULES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")


def _missing_docs_tools():
    missing = []
    for mod in _DOCS_MODULES:
        try:
            found = importlib.util.find_spec(mod) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(mod)
    return missing


def _build(site_dir):
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", site_dir],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    missing = _missing_docs_tools()
    if missing:
        pytest.skip(f"docs tools not installed ({', '.join(missing)}): pip install -e '.[docs]'")
    site = tmp_path_factory.mktemp("site")
    result = _build(str(site))
    return site, result


def test_docs_build_strictly(built_site):
    _, result = built_site
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"


def test_built_api_reference_shows_every_contract_name_and_member(built_site):
    site, result = built_site
    if result.returncode != 0:
        pytest.fail("the docs did not build; see test_docs_build_strictly")
    ids = set()
    for page in (site / "api").rglob("index.html"):
        ids.update(re.findall(r'id="([^"]+)"', page.read_text(encoding="utf-8")))
    missing = []
    for _name, (ident, members) in CONTRACT.items():
        for wanted in [ident] + [f"{ident}.{m}" for m in members]:
            if wanted not in ids:
                missing.append(wanted)
    assert not missing, f"the built API reference has no entry for: {', '.join(missing)}"


def test_built_site_has_every_page_of_the_nav(built_site):
    site, result = built_site
    if result.returncode != 0:
        pytest.fail("the docs did not build; see test_docs_build_strictly")
    pages = ["index", "installation", "quickstart", "concepts", "se-block", "derivations", "models",
             "training", "gpu", "benchmarks", "debugging", "tutorials"]
    absent = [p for p in pages if not (site / ("index.html" if p == "index" else f"{p}/index.html")).exists()]
    assert not absent, f"pages missing from the built site: {absent}"
    derivations = (site / "derivations" / "index.html").read_text(encoding="utf-8")
    for anchor in ("broadcasting", "conv2d", "max-pool", "avg-pool", "global-avg-pool", "batch-norm",
                   "cross-entropy", "sigmoid", "tanh", "relu", "dropout", "se-block"):
        assert f'id="{anchor}"' in derivations, f"derivations page lacks the #{anchor} section"
