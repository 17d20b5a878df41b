// The import drop zone: drag a file onto it, see the upload progress. Enhancement only:
// without this file the zone is a plain multipart form with a file input and a button.
// Loaded (deferred) by the import pages alone; bound by event delegation, so a form
// swapped in after an error needs no re-binding. No inline script (CSP script-src 'self').
"use strict";

(function () {
  var DRAG_CLASS = "is-dragover";
  var BUSY_CLASS = "is-uploading";

  function zoneOf(node) {
    return node instanceof Element ? node.closest("[data-dropzone]") : null;
  }

  function hasFiles(event) {
    var types = event.dataTransfer && event.dataTransfer.types;
    return !!types && Array.prototype.indexOf.call(types, "Files") !== -1;
  }

  function announce(message) {
    var region = document.getElementById("live-status");
    if (!region) return;
    region.textContent = "";
    window.setTimeout(function () { region.textContent = message; }, 50);
  }

  function sizeText(bytes) {
    if (bytes >= 1024 * 1024 * 1024) return (bytes / 1073741824).toFixed(1) + " GB";
    if (bytes >= 1024 * 1024) return (bytes / 1048576).toFixed(1) + " MB";
    if (bytes >= 1024) return Math.round(bytes / 1024) + " KB";
    return bytes + " bytes";
  }

  function showChosen(form) {
    var input = form.querySelector("input[type=file]");
    var name = form.querySelector("[data-drop-name]");
    if (!input || !name) return;
    var file = input.files && input.files[0];
    name.textContent = file ? "Chosen: " + file.name + " (" + sizeText(file.size) + ")" : "";
  }

  // --- the drop state -------------------------------------------------------------------

  document.addEventListener("dragenter", function (event) {
    var zone = zoneOf(event.target);
    if (!zone || !hasFiles(event)) return;
    event.preventDefault();
    zone.classList.add(DRAG_CLASS);
  });

  document.addEventListener("dragover", function (event) {
    if (!document.querySelector("[data-dropzone]") || !hasFiles(event)) return;
    // Anywhere on the page: never let the browser open the file in place of the page.
    event.preventDefault();
    var zone = zoneOf(event.target);
    event.dataTransfer.dropEffect = zone ? "copy" : "none";
    if (zone) zone.classList.add(DRAG_CLASS);
  });

  document.addEventListener("dragleave", function (event) {
    var zone = zoneOf(event.target);
    if (!zone) return;
    // Moving onto a child of the zone is not leaving it.
    if (event.relatedTarget instanceof Node && zone.contains(event.relatedTarget)) return;
    zone.classList.remove(DRAG_CLASS);
  });

  document.addEventListener("drop", function (event) {
    if (!document.querySelector("[data-dropzone]") || !hasFiles(event)) return;
    event.preventDefault();
    document.querySelectorAll("[data-dropzone]").forEach(function (zone) {
      zone.classList.remove(DRAG_CLASS);
    });
    var zone = zoneOf(event.target);
    if (!zone) return;
    var files = event.dataTransfer.files;
    var input = zone.querySelector("input[type=file]");
    var form = zone.closest("form");
    if (!files || !files.length || !input || !form) return;
    if (files.length > 1) {
      announce("Drop one file at a time: the first one is used.");
    }
    var transfer = new DataTransfer();
    transfer.items.add(files[0]);
    input.files = transfer.files;
    showChosen(form);
    upload(form);
  });

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target instanceof HTMLInputElement && target.type === "file") {
      var form = target.closest("form[data-upload-form]");
      if (form) showChosen(form);
    }
  });

  // --- the upload with its progress bar --------------------------------------------------

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-upload-form")) return;
    if (typeof XMLHttpRequest === "undefined" || typeof FormData === "undefined") return;
    event.preventDefault();
    upload(form);
  });

  function setProgress(form, percent, text) {
    var box = form.querySelector("[data-upload-progress]");
    if (!box) return;
    box.hidden = false;
    var bar = box.querySelector("progress");
    if (bar) {
      if (percent === null) bar.removeAttribute("value");
      else bar.value = percent;
    }
    var label = box.querySelector("[data-upload-text]");
    if (label) label.textContent = text;
  }

  function replaceCard(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var fresh = doc.getElementById("import-upload");
    var current = document.getElementById("import-upload");
    if (!fresh || !current) return false;
    current.replaceWith(document.importNode(fresh, true));
    var error = document.getElementById("file-error");
    var input = document.getElementById("file");
    if (input) input.focus();
    if (error) announce(error.textContent);
    return true;
  }

  function failed(form, message) {
    form.classList.remove(BUSY_CLASS);
    var button = form.querySelector("[data-upload-submit]");
    if (button) button.disabled = false;
    setProgress(form, 0, message);
    announce(message);
  }

  function upload(form) {
    if (form.classList.contains(BUSY_CLASS)) return;
    var button = form.querySelector("[data-upload-submit]");
    var xhr = new XMLHttpRequest();
    var data = new FormData(form);
    form.classList.add(BUSY_CLASS);
    if (button) button.disabled = true;
    setProgress(form, 0, "Uploading… 0 %");
    announce("Uploading the file.");

    xhr.upload.addEventListener("progress", function (event) {
      if (!event.lengthComputable) {
        setProgress(form, null, "Uploading… " + sizeText(event.loaded));
        return;
      }
      var percent = Math.floor((event.loaded / event.total) * 100);
      setProgress(
        form,
        percent,
        "Uploading… " + percent + " % (" + sizeText(event.loaded) + " of " + sizeText(event.total) + ")"
      );
    });
    xhr.upload.addEventListener("load", function () {
      setProgress(form, 100, "Uploaded. Reading the start of the file…");
    });

    xhr.addEventListener("load", function () {
      if (xhr.status >= 200 && xhr.status < 300) {
        // The 303 was followed: go where it pointed (the mapping page).
        setProgress(form, 100, "Uploaded. Opening the mapping…");
        window.location.assign(xhr.responseURL || form.action);
        return;
      }
      if ((xhr.status === 422 || xhr.status === 400) && replaceCard(xhr.responseText)) return;
      if (xhr.status === 413) {
        failed(form, "The file is too large for an import. Split it into smaller files.");
        return;
      }
      if (xhr.status === 403) {
        failed(form, "Your session has expired. Reload the page and try again.");
        return;
      }
      failed(form, "The upload failed (error " + xhr.status + "). Try again.");
    });
    xhr.addEventListener("error", function () {
      failed(form, "The upload was interrupted. Check your connection and try again.");
    });
    xhr.addEventListener("abort", function () {
      failed(form, "The upload was stopped.");
    });

    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "text/html");
    xhr.send(data);
  }
})();
