"""The documentation is bilingual and works offline.

Layout (mkdocs-static-i18n, ``docs_structure: suffix``): every English page ``docs/x.md`` has its
Chinese twin ``docs/x.zh.md`` beside it; the API reference pages (``docs/api/*.md``, generated
from the English docstrings) have none and are shown in English in both languages, except
``docs/api/index.md``, whose twin is a Chinese introduction.

Oracles: the English pages themselves (twins, anchors, figures, equations), the README's two
set-up commands, the built HTML/CSS (no script, style or font from outside the site), and —
where a Chromium is installed — a real browser that typesets the Chinese SE-block page.
"""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CJK = re.compile(r"[\u4e00-\u9fff]")
EXCLUDED = {"javascripts/katex/README.md"}        # a provenance note, excluded from the site (mkdocs.yml)
HOW = ("write docs/{zh} next to docs/{en} (Chinese prose, the same sections, anchors, figures and "
       "equations; see docs/glossary.zh.md for the terms)")


def _english_pages():
    pages = []
    for path in sorted(DOCS.rglob("*.md")):
        rel = path.relative_to(DOCS).as_posix()
        if rel.endswith(".zh.md") or rel in EXCLUDED:
            continue
        if rel.startswith("api/") and rel != "api/index.md":
            continue                                  # generated from English docstrings
        pages.append(rel)
    return pages


def _twin(rel):
    return rel[:-3] + ".zh.md"


def _strip_code(text):
    return re.sub(r"```.*?```", "", text, flags=re.DOTALL)


ENGLISH = _english_pages()


def test_every_english_page_has_a_chinese_twin():
    assert "se-block.md" in ENGLISH and "index.md" in ENGLISH
    missing = [rel for rel in ENGLISH if not (DOCS / _twin(rel)).exists()]
    assert not missing, "pages without a Chinese twin:\n" + "\n".join(
        HOW.format(en=rel, zh=_twin(rel)) for rel in missing)
    orphans = [p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.zh.md")
               if not p.with_name(p.name[:-6] + ".md").exists()]
    assert not orphans, f"Chinese pages without an English original: {orphans}"


@pytest.mark.parametrize("rel", ENGLISH)
def test_chinese_twin_is_chinese_and_keeps_the_anchors_figures_and_equations(rel):
    zh_path = DOCS / _twin(rel)
    if not zh_path.exists():
        pytest.fail(HOW.format(en=rel, zh=_twin(rel)))
    en, zh = (DOCS / rel).read_text(encoding="utf-8"), zh_path.read_text(encoding="utf-8")
    prose = _strip_code(zh)
    assert len(CJK.findall(prose)) > 0.2 * len(re.findall(r"[A-Za-z]+", _strip_code(en))), (
        f"docs/{_twin(rel)} is mostly not Chinese")
    if rel in ("glossary.md", "api/index.md"):
        return                                        # written for each language, not translated
    anchors = set(re.findall(r"\{#([A-Za-z0-9_-]+)\}", en))
    lost = anchors - set(re.findall(r"\{#([A-Za-z0-9_-]+)\}", zh))
    assert not lost, f"docs/{_twin(rel)} lacks the anchors {sorted(lost)} (links point at them)"
    figures = re.findall(r"\]\((figures/[^)]+)\)", en)
    assert re.findall(r"\]\((figures/[^)]+)\)", zh) == figures, f"docs/{_twin(rel)}: not the same figures"
    display = len(re.findall(r"^\$\$", en, flags=re.MULTILINE))
    assert len(re.findall(r"^\$\$", zh, flags=re.MULTILINE)) == display, f"docs/{_twin(rel)}: not the same equations"
    en_code = re.findall(r"```[a-z]*\n(.*?)```", en, flags=re.DOTALL)
    zh_code = [c.replace("tutorials/zh/", "tutorials/")
               for c in re.findall(r"```[a-z]*\n(.*?)```", zh, flags=re.DOTALL)]
    assert zh_code == en_code, (
        f"docs/{_twin(rel)}: the code blocks must be the English page's, unchanged (except for "
        "pointing at tutorials/zh/)")


def test_readme_zh_has_the_same_two_setup_commands_and_the_english_readme_links_to_it():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    zh = (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
    assert "(README.zh-CN.md)" in readme and "(README.md)" in zh

    def commands(text):
        blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
        return [line.split("#")[0].strip() for b in blocks for line in b.splitlines() if line.strip()]

    setup = ["pip install -e .", "minise train --model se_resnet20 --dataset embedded"]
    for text in (readme, zh):
        found = commands(text)
        assert any(found[i:i + 2] == setup for i in range(len(found))), "the two set-up commands, in order"


def test_mkdocs_config_is_bilingual_and_loads_nothing_from_outside():
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert re.search(r"^\s+font: false", config, flags=re.MULTILINE), "theme.font must be false (no Google Fonts)"
    assert "docs_structure: suffix" in config and "locale: zh" in config
    assert not re.search(r"https?://", re.sub(r"#.*", "", config)), "mkdocs.yml must not load URLs"
    assert "mkdocs-static-i18n" in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


# --- the built site ----------------------------------------------------------------------------

_TOOLS = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "mkdocs_static_i18n")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    missing = [m for m in _TOOLS if importlib.util.find_spec(m.split(".")[0]) is None
               or (m == "mkdocstrings_handlers.python" and importlib.util.find_spec(m) is None)]
    if missing:
        pytest.skip(f"docs tools not installed ({', '.join(missing)}): pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"), capture_output=True, text=True, timeout=300,
        check=False)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    return out


def _page(rel):
    stem = rel[:-3]
    return "index.html" if stem == "index" else (f"{stem[:-6]}/index.html" if stem.endswith("/index")
                                                  else f"{stem}/index.html")


def test_site_builds_both_languages_with_a_switcher(site):
    for rel in ENGLISH:
        en, zh = site / _page(rel), site / "zh" / _page(rel)
        assert en.exists() and zh.exists(), f"{rel}: {en.exists()=}, {zh.exists()=}"
        assert CJK.search(zh.read_text(encoding="utf-8")), f"zh/{_page(rel)} is not Chinese"
    zh_block = (site / "zh" / "se-block" / "index.html").read_text(encoding="utf-8")
    en_block = (site / "se-block" / "index.html").read_text(encoding="utf-8")
    assert '<html lang="zh"' in zh_block and '<html lang="en"' in en_block
    for html in (zh_block, en_block):                 # Material's language selector, both ways
        assert 'hreflang="en"' in html and 'hreflang="zh"' in html
    assert "挤压" in zh_block and 'id="squeeze"' in zh_block
    # the API reference stays English (fallback) in the Chinese site, with a Chinese introduction
    assert "minise.nn.SEBlock" in (site / "zh" / "api" / "nn" / "index.html").read_text(encoding="utf-8")
    assert "中文导读" in (site / "zh" / "api" / "index.html").read_text(encoding="utf-8")


_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)


def _external_resources(html):
    found = []
    tags = r"<(script|link|img|iframe|source|audio|video|embed)\b([^>]*)>"
    for tag, attrs in re.findall(tags, html, flags=re.IGNORECASE):
        if tag.lower() == "link":
            rel = re.search(r'rel="([^"]*)"', attrs)
            if rel and rel.group(1).lower() in ("alternate", "canonical"):
                continue                              # language switcher targets, not loaded resources
        for url in re.findall(r'\b(?:src|href|srcset)="([^"]*)"', attrs):
            if _EXTERNAL.match(url.strip()):
                found.append(f"<{tag} {url}>")
    for css in re.findall(r"<style[^>]*>(.*?)</style>", html, flags=re.DOTALL | re.IGNORECASE):
        found += _css_external(css)
    return found


def _css_external(css):
    urls = re.findall(r"url\(\s*['\"]?([^'\")]+)", css) + re.findall(r"@import\s+['\"]([^'\"]+)", css)
    return [u for u in urls if _EXTERNAL.match(u.strip())]


def test_built_site_loads_no_script_style_or_font_from_outside(site):
    problems = []
    pages = list(site.rglob("*.html"))
    assert len(pages) > 20
    for page in pages:
        html = page.read_text(encoding="utf-8")
        problems += [f"{page.relative_to(site)}: {r}" for r in _external_resources(html)]
        if 'class="mermaid"' in html:                 # the theme would fetch mermaid.js from a CDN
            problems.append(f"{page.relative_to(site)}: a mermaid diagram")
    for css in site.rglob("*.css"):
        problems += [f"{css.relative_to(site)}: {u}" for u in _css_external(css.read_text(encoding="utf-8"))]
    assert not problems, "external resources in the built site:\n" + "\n".join(problems[:20])
    page = (site / "zh" / "se-block" / "index.html").read_text(encoding="utf-8")
    for local in ("javascripts/katex/katex.min.js", "javascripts/katex/katex.min.css", "javascripts/katex-render.js"):
        assert local in page, f"the page does not load {local}"
        assert (site / local).is_file()
    assert "mathjax" not in page.lower() and "fonts.googleapis" not in page
    fonts = {p.name for p in (site / "javascripts" / "katex" / "fonts").glob("*.woff2")}
    wanted = set(re.findall(r"url\(fonts/([^)]+\.woff2)\)", (site / "javascripts/katex/katex.min.css").read_text()))
    assert wanted and wanted <= fonts, f"fonts the KaTeX stylesheet names but the site lacks: {wanted - fonts}"


def test_external_resource_finder_catches_what_it_should():
    assert _external_resources('<script src="https://cdn.example.org/m.js"></script>') == [
        "<script https://cdn.example.org/m.js>"]
    assert _external_resources('<link rel="stylesheet" href="//fonts.example.org/css">')
    assert _external_resources('<style>@import "https://fonts.example.org/x.css";</style>')
    assert not _external_resources('<a href="https://example.org">a link</a><script src="../x.js"></script>')
    assert not _external_resources('<link rel="alternate" href="/zh/" hreflang="zh">')
    assert _css_external("src:url(https://x.org/f.woff2)") and not _css_external("src:url(fonts/f.woff2)")


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.slow
def test_a_real_browser_typesets_the_chinese_se_block_page_offline(site):
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium installed (apt-get install chromium)")
    page = site / "zh" / "se-block" / "index.html"
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--virtual-time-budget=5000",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    dom = result.stdout
    assert "挤压" in dom, f"Chromium rendered nothing:\n{result.stderr[-2000:]}"
    rendered = len(re.findall(r'class="katex-display"', dom))
    source = page.read_text(encoding="utf-8")
    displays = len(re.findall(r'<div class="arithmatex">', source))
    assert displays >= 5 and rendered == displays, f"{rendered} of {displays} display equations typeset"
    assert "katex-error" not in dom
    assert not re.search(r'class="arithmatex">\\\(', dom), "inline maths left as raw LaTeX"
