// Typeset the maths that pymdownx.arithmatex (generic mode) leaves in the page:
// <span class="arithmatex">\(...\)</span> inline, <div class="arithmatex">\[...\]</div> display.
// KaTeX is served from javascripts/katex/ (no CDN), so equations render offline.
(function () {
  function typeset(root) {
    root.querySelectorAll(".arithmatex").forEach(function (el) {
      if (el.dataset.katexDone) return;
      var tex = el.textContent.trim();
      var display = el.tagName === "DIV";
      var m = tex.match(/^\\\(([\s\S]*)\\\)$/) || tex.match(/^\\\[([\s\S]*)\\\]$/);
      if (m) tex = m[1];
      try {
        katex.render(tex, el, { displayMode: display, throwOnError: false, strict: "ignore" });
        el.dataset.katexDone = "1";
      } catch (err) {
        console.error("KaTeX could not render", tex, err);
      }
    });
  }
  if (typeof document$ !== "undefined") {
    // Material's instant navigation swaps the page body: typeset each new page.
    document$.subscribe(function () { typeset(document.body); });
  } else {
    document.addEventListener("DOMContentLoaded", function () { typeset(document.body); });
  }
})();
