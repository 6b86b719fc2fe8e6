"""Chinese labels on Matplotlib figures, for the Chinese tutorials (``tutorials/zh/``).

The Chinese notebooks run the very same code cells as the English ones (``tests/test_zh.py``
checks that), so their figures are drawn by code that writes English titles and labels. One
setup cell at the top of each Chinese notebook calls :func:`use_chinese` with a table of
translations; from then on every piece of text that Matplotlib draws (titles, axis labels, tick
labels, legends, colour-bar labels, ``ax.text``) goes through the table before it is drawn.

Chinese text needs a font with CJK glyphs (Matplotlib's default DejaVu Sans has none and would
draw empty boxes). :func:`find_cjk_font` looks for one among the fonts installed on the machine
(e.g. Debian's ``fonts-noto-cjk``). When there is none, :func:`use_chinese` warns and leaves the
labels in English: the figures stay readable, and the notebooks run the same everywhere (the test
suite and CI do not need a CJK font).

Matplotlib is imported only when one of these functions is called, so ``import minise`` stays
fast.
"""

from __future__ import annotations

import re
import warnings

__all__ = ["CJK_FONT_NAMES", "find_cjk_font", "translate", "use_chinese"]

# Family names of common fonts with Simplified Chinese glyphs, best first. The Noto CJK
# collections (.ttc) are listed by Matplotlib under the name of their first face, which is the
# Japanese one ("Noto Sans CJK JP"); it has every Simplified Chinese character.
CJK_FONT_NAMES = (
    "Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Noto Sans CJK KR",
    "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
    "Noto Serif CJK SC", "Noto Serif CJK JP", "AR PL UMing CN", "AR PL UKai CN",
    "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "Hiragino Sans GB",
)
# File-name fragments of those fonts, to find fonts installed after Matplotlib built its cache.
_CJK_FILE_HINTS = ("notosanscjk", "notoserifcjk", "sourcehansans", "wqy-zenhei", "wqy-microhei",
                   "uming", "ukai", "simhei", "msyh", "pingfang")

_state = {"table": None, "patched": False}
_WORD = re.compile(r"\w")


def find_cjk_font() -> str | None:
    """The family name of an installed font that can draw Chinese, or ``None``.

    Looks first at the fonts Matplotlib already knows, then at font files installed since its
    font cache was written (registering those with ``fontManager.addfont``).

    Returns:
        A family name from :data:`CJK_FONT_NAMES` (str), or ``None`` when the machine has none.
    """
    from matplotlib import font_manager

    known = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONT_NAMES:
        if name in known:
            return name
    added = False
    for path in sorted(font_manager.findSystemFonts()):
        lower = path.replace("-", "").replace("_", "").lower()
        if any(hint.replace("-", "") in lower for hint in _CJK_FILE_HINTS):
            try:        # every weight, so that regular text is not drawn in the bold face
                font_manager.fontManager.addfont(path)
                added = True
            except (OSError, RuntimeError, ValueError):
                continue
    if added:
        known = {f.name for f in font_manager.fontManager.ttflist}
        for name in CJK_FONT_NAMES:
            if name in known:
                return name
    return None


def translate(text: str, table: dict[str, str] | None = None) -> str:
    """``text`` with the keys of ``table`` replaced by their values.

    A key equal to the whole text wins; otherwise every key is replaced where it stands as whole
    words (``"ring"`` does not touch ``"training"``), longest keys first, so a table can hold both
    a long title and the short words inside other labels.

    Args:
        text: the label Matplotlib is about to draw.
        table: English -> Chinese; defaults to the table given to :func:`use_chinese`.

    Returns:
        The translated text (``text`` itself when nothing matches or no table is active).
    """
    table = _state["table"] if table is None else table
    if not table or not isinstance(text, str) or not text:
        return text
    if text in table:
        return table[text]
    for key in sorted(table, key=len, reverse=True):
        if key and key in text:
            pattern = ((r"(?<!\w)" if _WORD.match(key[0]) else "") + re.escape(key)
                       + (r"(?!\w)" if _WORD.match(key[-1]) else ""))
            text = re.sub(pattern, lambda m, v=table[key]: v, text)
    return text


def _patch_text():
    from matplotlib.text import Text

    if _state["patched"]:
        return
    original = Text.set_text

    def set_text(self, s):
        return original(self, translate(s) if isinstance(s, str) else s)

    set_text.__doc__ = original.__doc__
    Text.set_text = set_text
    _state["patched"] = True


def use_chinese(table: dict[str, str] | None = None, *, warn: bool = True) -> str | None:
    """Draw this session's Matplotlib figures with Chinese titles and labels.

    Sets ``font.sans-serif`` to a CJK font followed by the previous list (Matplotlib falls back
    glyph by glyph, so Greek letters and maths still come from DejaVu Sans), and routes every
    text Matplotlib draws through :func:`translate` with ``table``.

    Args:
        table: English label (or part of one) -> Chinese. Replaces the previous table.
        warn: warn (``UserWarning``) when no CJK font is installed.

    Returns:
        The CJK font's family name, or ``None`` when no CJK font is installed: then a warning is
        issued, no translation is installed, and figures keep their English labels.
    """
    import matplotlib as mpl

    font = find_cjk_font()
    if font is None:
        _state["table"] = None
        if warn:
            warnings.warn(
                "use_chinese: no font with Chinese glyphs is installed (looked for "
                f"{', '.join(CJK_FONT_NAMES[:3])}, ...); figures keep their English labels. "
                "Install one, e.g. `apt-get install fonts-noto-cjk` on Debian/Ubuntu.",
                UserWarning, stacklevel=2)
        return None
    previous = [f for f in mpl.rcParams["font.sans-serif"] if f != font]
    mpl.rcParams["font.sans-serif"] = [font] + previous
    mpl.rcParams["font.family"] = "sans-serif"
    mpl.rcParams["axes.unicode_minus"] = False      # not every CJK font has U+2212
    _state["table"] = dict(table or {})
    _patch_text()
    return font
