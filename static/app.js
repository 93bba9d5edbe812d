// keyconsole's small progressive enhancements. Every page works without them.
(function () {
  "use strict";
  document.querySelectorAll("[data-copy-target]").forEach(function (btn) {
    btn.hidden = false;
    btn.addEventListener("click", function () {
      var el = document.getElementById(btn.getAttribute("data-copy-target"));
      if (!el || !navigator.clipboard) { return; }
      navigator.clipboard.writeText(el.textContent.trim()).then(function () {
        var status = document.getElementById(btn.getAttribute("data-copy-status"));
        if (status) { status.textContent = "Copied to the clipboard."; }
      });
    });
  });
})();
