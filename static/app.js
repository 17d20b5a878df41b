// Progressive enhancement only: every page works without this file.
// Keyboard shortcuts, inline editing and drag-and-drop land here with their features.
"use strict";

(function () {
  // Announce a short message to screen readers through the page's live region.
  function announce(message) {
    var region = document.getElementById("live-status");
    if (!region) return;
    region.textContent = "";
    window.setTimeout(function () { region.textContent = message; }, 50);
  }

  function copyText(input) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(input.value);
    }
    // Plain http on another host has no clipboard API: select and use the older command.
    input.focus();
    input.select();
    var copied = document.execCommand && document.execCommand("copy");
    return copied ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  // <button data-copy="input-id" hidden>: shown only when it can work, copies the input.
  function enableCopyButtons(root) {
    root.querySelectorAll("button[data-copy]").forEach(function (button) {
      var input = document.getElementById(button.getAttribute("data-copy"));
      if (!input || button.dataset.copyReady) return;
      button.dataset.copyReady = "1";
      button.hidden = false;
      var label = button.textContent;
      button.addEventListener("click", function () {
        copyText(input).then(
          function () {
            button.textContent = "Copied";
            announce("Copied to the clipboard.");
            window.setTimeout(function () { button.textContent = label; }, 2000);
          },
          function () {
            input.focus();
            input.select();
            announce("Copying failed: the token is selected, press Control+C or Command+C.");
          }
        );
      });
    });
  }

  // Clicking the read-only token selects all of it, ready to copy by hand.
  document.addEventListener("focusin", function (event) {
    var target = event.target;
    if (target instanceof HTMLInputElement && target.readOnly && target.id === "new-token-value") {
      target.select();
    }
  });

  function ready() { enableCopyButtons(document); }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
  // Content swapped in by htmx gets the same behaviour.
  document.addEventListener("htmx:load", function (event) { enableCopyButtons(event.target); });
})();
