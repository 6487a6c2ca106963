// tunewright studio: the little script every page needs (htmx does the rest).
// - times shown in the reader's local zone;
// - network failures and refused uploads become toasts like the server's errors;
// - uploads: drag and drop, size checked before sending, progress shown;
// - the training form repeats an admission error inline;
// - the resume card says, before the click, when ticked changes restart from step 0.
(function () {
  "use strict";

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d.getTime()) && !t.dataset.local) {
        t.textContent = d.toLocaleString();
        t.title = t.getAttribute("datetime");
        t.dataset.local = "1";
      }
    });
  }

  function toast(code, detail) {
    var area = document.getElementById("toasts");
    if (!area) return;
    var div = document.createElement("div");
    div.className = "toast toast-error";
    div.setAttribute("role", "alert");
    div.dataset.errorCode = code;
    var strong = document.createElement("strong");
    strong.className = "toast-code";
    strong.textContent = code;
    var span = document.createElement("span");
    span.className = "toast-detail";
    span.textContent = " " + detail;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "\u00d7";
    close.addEventListener("click", function () { div.remove(); });
    div.append(strong, span, close);
    area.prepend(div);
  }
  window.tunewrightToast = toast;

  function megabytes(n) { return (n / 1048576).toFixed(1) + " MiB"; }

  // An upload bigger than the limits shown on the form is refused before it is sent.
  function checkUpload(form) {
    var input = form.querySelector("input[type=file]");
    var file = input && input.files && input.files[0];
    if (!file) return true;
    var max = Number(form.dataset.maxBytes || Infinity);
    var room = form.dataset.roomBytes === undefined ? Infinity : Number(form.dataset.roomBytes);
    if (file.size > max) {
      toast("FILE_TOO_LARGE", "File '" + file.name + "' is " + megabytes(file.size) + ", over the limit of " + megabytes(max) + " (not sent)");
      return false;
    }
    if (file.size > room) {
      toast("FILE_TOTAL_LIMIT", "File '" + file.name + "' (" + megabytes(file.size) + ") does not fit: the project has " + megabytes(Math.max(room, 0)) + " left (not sent)");
      return false;
    }
    return true;
  }

  function dropzones(root) {
    root.querySelectorAll("form.dropzone").forEach(function (form) {
      if (form.dataset.ready) return;
      form.dataset.ready = "1";
      ["dragenter", "dragover"].forEach(function (ev) {
        form.addEventListener(ev, function (e) { e.preventDefault(); form.classList.add("over"); });
      });
      ["dragleave", "drop"].forEach(function (ev) {
        form.addEventListener(ev, function () { form.classList.remove("over"); });
      });
      form.addEventListener("drop", function (e) {
        e.preventDefault();
        var input = form.querySelector("input[type=file]");
        if (!input || !e.dataTransfer || !e.dataTransfer.files.length) return;
        input.files = e.dataTransfer.files;
        form.requestSubmit();
      });
    });
  }

  function textOf(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var code = doc.querySelector(".toast-code");
    var detail = doc.querySelector(".toast-detail");
    return code ? code.textContent + ": " + (detail ? detail.textContent : "") : "";
  }

  // The resume card: name the keys that restart from step 0 as soon as they are ticked.
  function resumeCards(root) {
    root.querySelectorAll("#resume-form").forEach(function (form) {
      if (form.dataset.ready) return;
      form.dataset.ready = "1";
      var restartKeys = (form.dataset.restartKeys || "").split(",").filter(Boolean);
      var fromStep = form.dataset.fromStep;
      var note = form.querySelector("#restart-note");
      var button = form.querySelector("#resume-button");
      var hidden = form.querySelector("input[name=from_step]");
      function update() {
        var restarting = [];
        form.querySelectorAll("input[name=suggestion]:checked").forEach(function (box) {
          (box.dataset.keys || "").split(",").forEach(function (k) {
            if (restartKeys.indexOf(k) >= 0 && restarting.indexOf(k) < 0) restarting.push(k);
          });
        });
        if (restarting.length) {
          note.hidden = false;
          note.textContent = "Starts from step 0: a checkpoint cannot carry a change of " + restarting.join(", ") + ".";
          button.textContent = "Start again from step 0";
          hidden.value = "";
        } else {
          note.hidden = true;
          note.textContent = "";
          button.textContent = fromStep ? "Resume from step " + fromStep : "Start again from step 0";
          hidden.value = fromStep || "";
        }
      }
      form.addEventListener("change", update);
      update();
    });
  }

  function enhance(root) {
    localTimes(root);
    dropzones(root);
    resumeCards(root);
  }

  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  document.addEventListener("htmx:load", function (e) { enhance(e.target); });
  document.addEventListener("htmx:beforeRequest", function (e) {
    var form = e.detail.elt;
    if (form.matches && form.matches("form.dropzone") && !checkUpload(form)) e.preventDefault();
  });
  document.addEventListener("htmx:xhr:progress", function (e) {
    var form = e.detail.elt;
    var bar = form.querySelector && form.querySelector(".upload-progress");
    if (bar && e.detail.lengthComputable) {
      bar.hidden = false;
      bar.value = Math.round((e.detail.loaded / e.detail.total) * 100);
    }
  });
  document.addEventListener("htmx:sendError", function () {
    toast("NETWORK_ERROR", "The service could not be reached: check the connection (or the SSH tunnel) and try again");
  });
  document.addEventListener("htmx:responseError", function (e) {
    var form = e.detail.elt;
    if (form && form.id === "train-form") {
      var box = document.getElementById("train-error");
      box.textContent = textOf(e.detail.xhr.responseText);
      box.hidden = !box.textContent;
    }
  });
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    var first = document.querySelector("#toasts .toast");
    if (first) first.remove();
  });
})();
