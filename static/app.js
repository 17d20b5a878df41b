// Progressive enhancement only: every page works without this file.
// No inline scripts and nothing evaluated (CSP script-src 'self', htmx allowEval false):
// behaviour htmx cannot express without expressions lives here, bound by event delegation
// so that content swapped in by htmx needs no re-binding.
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

// --- Customers: keyboard shortcuts, rows, cells edited in place, bulk actions ----------
(function () {
  var ROW = "tr[data-row]";
  var CELL = "[data-cell]";
  var EDITING = "[data-cell-editing]";
  var NOT_TYPING = ["checkbox", "radio", "button", "submit", "reset"];
  // Where focus goes once htmx has swapped a cell: {slug, field, step}. step 0 keeps the
  // focus on the saved (or cancelled) cell; 1 / -1 edits the next / previous cell (Tab).
  var pending = null;

  function announce(message) {
    var region = document.getElementById("live-status");
    if (!region || !message) return;
    region.textContent = "";
    window.setTimeout(function () { region.textContent = message; }, 50);
  }

  function isTyping(element) {
    if (!(element instanceof HTMLElement)) return false;
    if (element.isContentEditable) return true;
    if (element instanceof HTMLTextAreaElement || element instanceof HTMLSelectElement) return true;
    return element instanceof HTMLInputElement && NOT_TYPING.indexOf(element.type) < 0;
  }

  function dashboard() { return document.querySelector("[data-dashboard]"); }
  function rows() { return Array.prototype.slice.call(document.querySelectorAll(ROW)); }
  function rowOf(element) { return element && element.closest ? element.closest(ROW) : null; }

  function currentRow() {
    return rowOf(document.activeElement) || document.querySelector(ROW + '[tabindex="0"]') ||
      document.querySelector(ROW);
  }

  // Roving tabindex: exactly one row is in the Tab order, the one last focused.
  function makeCurrent(row) {
    rows().forEach(function (other) { other.tabIndex = other === row ? 0 : -1; });
  }

  function focusRow(row) {
    if (!row) return;
    makeCurrent(row);
    row.focus();
  }

  function moveRow(step) {
    var all = rows();
    if (!all.length) return;
    var inRow = rowOf(document.activeElement);
    if (!inRow) {
      focusRow(currentRow());
      return;
    }
    var index = all.indexOf(inRow) + step;
    focusRow(all[Math.min(Math.max(index, 0), all.length - 1)]);
  }

  function openRow(row) {
    if (row && row.dataset.href) window.location.assign(row.dataset.href);
  }

  function focusCell(cell) {
    var row = rowOf(cell);
    if (row) makeCurrent(row);
    cell.focus();
  }

  // Swap `cell` with what `url` answers. Called directly rather than through the cell's
  // own hx-* attributes, which htmx only reads once it has processed a freshly swapped
  // cell (a few milliseconds later): a fast Enter, Tab or Escape must not fall through to
  // a full page load.
  function swapCell(cell, verb, url) {
    if (!window.htmx || !url) return false;
    // A POST sends the cell's form; a GET sends nothing but the request.
    var source = verb === "POST" ? cell.querySelector("form") : cell;
    window.htmx.ajax(verb, url, { source: source, target: cell, swap: "outerHTML" });
    return true;
  }

  function editCell(cell) {
    if (cell && cell.matches(CELL)) swapCell(cell, "GET", cell.getAttribute("hx-get"));
  }

  // The editable cell `step` places away, continuing on the next or previous row.
  function neighbourCell(cell, step) {
    var all = [];
    rows().forEach(function (row) {
      Array.prototype.push.apply(all, row.querySelectorAll(CELL + ", " + EDITING));
    });
    var index = all.indexOf(cell);
    return index < 0 ? null : all[index + step] || null;
  }

  function toggleRow(row) {
    var box = row && row.querySelector("[data-row-select]");
    if (!box) return;
    box.checked = !box.checked;
    box.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function openDialog(id) {
    var dialog = document.getElementById(id);
    if (dialog && !dialog.open) dialog.showModal();
  }

  function selectedCount() {
    return document.querySelectorAll("[data-row-select]:checked").length;
  }

  function customersLabel(count) {
    return count === 1 ? "1 customer" : count + " customers";
  }

  // The bulk bar follows the checkboxes: how many are selected, Delete only when some are.
  function updateSelection() {
    var boxes = document.querySelectorAll("[data-row-select]");
    var count = selectedCount();
    var all = document.querySelector("[data-select-all]");
    if (all) {
      all.hidden = false;
      all.checked = boxes.length > 0 && count === boxes.length;
      all.indeterminate = count > 0 && count < boxes.length;
    }
    var form = document.querySelector("[data-bulk-form]");
    if (!form) return;
    var label = form.querySelector("[data-selected-count]");
    if (label) label.textContent = count ? count + " selected" : "";
    var button = form.querySelector("[data-bulk-delete]");
    if (button) button.disabled = count === 0;
  }

  function enhance(root) {
    if (!root || !root.querySelectorAll) return;
    root.querySelectorAll("[data-open-dialog]").forEach(function (button) { button.hidden = false; });
    updateSelection();
  }

  // A key typed while editing a cell: Escape cancels, Tab saves and moves on.
  function cellFormKey(event, form) {
    var cell = form.closest(EDITING);
    if (!cell) return;
    var here = { slug: cell.dataset.slug, field: cell.dataset.field, step: 0 };
    if (event.key === "Escape") {
      event.preventDefault();
      pending = here;
      var cancel = form.querySelector("[data-cell-cancel]");
      if (cancel) swapCell(cell, "GET", cancel.getAttribute("hx-get"));
    } else if (event.key === "Tab") {
      event.preventDefault();
      here.step = event.shiftKey ? -1 : 1;
      pending = here;
      form.requestSubmit();
    } else if (event.key === "Enter") {
      pending = here; // the form submits (or Cancel follows) as usual
    }
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target instanceof Element ? event.target : document.body;
    var form = target.closest(".cell-form");
    if (form) {
      cellFormKey(event, form);
      return;
    }
    // From the search box, ArrowDown goes on to the results (Escape empties the box first,
    // as browsers do, then leaves it for the rows).
    if (target.id === "q" && (event.key === "ArrowDown" || (event.key === "Escape" && !target.value))) {
      var first = document.querySelector(ROW);
      if (first) {
        event.preventDefault();
        focusRow(first);
      }
      return;
    }
    var board = dashboard();
    if (!board || isTyping(target) || document.querySelector("dialog[open]")) return;
    var row = currentRow();
    var inTable = target === document.body || target.closest("[data-customers-table]");
    switch (event.key) {
      case "/":
        var search = document.getElementById("q");
        if (!search) return;
        search.focus();
        search.select();
        break;
      case "?":
        openDialog("shortcuts-help");
        break;
      case "j":
        moveRow(1);
        break;
      case "k":
        moveRow(-1);
        break;
      case "ArrowDown":
        if (!inTable) return;
        moveRow(1);
        break;
      case "ArrowUp":
        if (!inTable) return;
        moveRow(-1);
        break;
      case "o":
        openRow(row);
        break;
      case "Enter":
        if (target.matches(CELL)) editCell(target);
        else if (target.matches(ROW)) openRow(target);
        else return;
        break;
      case "e":
        editCell(target.matches(CELL) ? target : row && row.querySelector(CELL));
        break;
      case "x":
        toggleRow(row);
        break;
      case "n":
        window.location.assign(board.dataset.newUrl);
        break;
      default:
        return;
    }
    event.preventDefault();
  });

  // A click on a cell (not on its link) edits it.
  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    var cell = target && target.closest(CELL);
    if (!cell || target.closest("a, button, input, label, select, textarea")) return;
    if (String(window.getSelection ? window.getSelection() : "").length) return; // selecting text
    editCell(cell);
  });

  // The same for a cell's Save (Enter, Tab) and Cancel when htmx has not taken them over
  // yet: htmx handles them itself (and prevents the default) once it has.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var cell = form instanceof HTMLFormElement && form.matches(".cell-form") && form.closest(EDITING);
    if (!cell || event.defaultPrevented) return;
    if (swapCell(cell, "POST", form.getAttribute("hx-post"))) event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    var cancel = event.target instanceof Element && event.target.closest("[data-cell-cancel]");
    var cell = cancel && cancel.closest(EDITING);
    if (!cell || event.defaultPrevented) return;
    if (swapCell(cell, "GET", cancel.getAttribute("hx-get"))) event.preventDefault();
  });

  document.addEventListener("focusin", function (event) {
    var row = rowOf(event.target);
    if (row && row.tabIndex !== 0) makeCurrent(row);
  });

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!(target instanceof HTMLInputElement)) return;
    if (target.matches("[data-select-all]")) {
      document.querySelectorAll("[data-row-select]").forEach(function (box) {
        box.checked = target.checked;
      });
    }
    if (target.matches("[data-select-all], [data-row-select]")) updateSelection();
  });

  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element && event.target.closest("[data-open-dialog]");
    if (button) openDialog(button.getAttribute("data-open-dialog"));
  });

  // Bulk delete: a <dialog> asks before htmx sends the form (without JavaScript the server
  // asks on a page of its own).
  document.addEventListener("htmx:confirm", function (event) {
    var form = event.detail.elt;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirmDialog) return;
    var dialog = document.getElementById(form.dataset.confirmDialog);
    if (!dialog) return;
    event.preventDefault();
    var count = dialog.querySelector("[data-confirm-count]");
    if (count) count.textContent = customersLabel(selectedCount());
    dialog.returnValue = "";
    dialog.addEventListener("close", function closed() {
      dialog.removeEventListener("close", closed);
      if (dialog.returnValue !== "confirm") return;
      var field = form.querySelector("[data-confirm-field]");
      if (field) field.value = "yes";
      event.detail.issueRequest(true);
    });
    dialog.showModal();
  });

  // Filters: leave out of the URL htmx pushes what is empty or a select's first (default)
  // choice, so a search is a short link.
  document.addEventListener("htmx:configRequest", function (event) {
    var elt = event.detail.elt;
    var form = elt.closest ? elt.closest("[data-filters]") : null;
    if (event.detail.verb !== "get" || !form) return;
    var parameters = event.detail.parameters;
    Object.keys(parameters).forEach(function (name) {
      var value = parameters[name];
      var control = form.elements.namedItem(name);
      var fallback = control instanceof HTMLSelectElement && control.options.length
        ? control.options[0].value : "";
      if (value === "" || value === fallback) delete parameters[name];
    });
  });

  document.addEventListener("htmx:load", function (event) {
    var element = event.detail.elt;
    if (!(element instanceof Element)) return;
    enhance(element === document.body ? document : element);
    if (element.matches(EDITING)) {
      pending = null;
      var input = element.querySelector(".cell-input");
      if (input) {
        input.focus();
        input.select();
      }
      return;
    }
    if (element.matches(CELL)) {
      var move = pending;
      pending = null;
      if (move && move.slug === element.dataset.slug && move.field === element.dataset.field) {
        var next = move.step ? neighbourCell(element, move.step) : null;
        if (next) editCell(next);
        else focusCell(element);
      } else if (!document.activeElement || document.activeElement === document.body) {
        focusCell(element);
      }
      return;
    }
    if (element.id === "results") {
      var count = element.querySelector("[data-count]");
      announce(count ? count.textContent : element.textContent.trim().split("\n")[0]);
      // A page link that was clicked is gone with the old results: continue on the rows.
      if (!document.activeElement || document.activeElement === document.body) {
        focusRow(element.querySelector(ROW));
      }
    }
  });

  document.addEventListener("customerUpdated", function () { announce("Saved."); });
  document.addEventListener("customerDeleted", function (event) {
    announce(event.detail && event.detail.message);
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  } else {
    enhance(document);
  }
})();
