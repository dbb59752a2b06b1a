/* Threadline review console: keyboard shortcuts over plain forms and links.
   Every shortcut has a button or link that does the same by mouse. No dependencies. */
(function () {
  "use strict";
  var help = document.getElementById("help");

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  function press(key) {
    // The element that carries this key: a button submits its form, a link is followed.
    // The page's own element first (an item's "Undo"), then the flash's ("Approved. Press u").
    var el = document.querySelector('main [data-key="' + key + '"]:not([disabled])') ||
      document.querySelector('[data-key="' + key + '"]:not([disabled])');
    if (!el) return false;
    if (el.dataset.toggle) {
      var target = document.getElementById(el.dataset.toggle);
      target.hidden = false;
      var first = target.querySelector("input:not([type=hidden]), textarea, select");
      if (first) { first.focus(); if (first.select) first.select(); }
      return true;
    }
    el.click();
    return true;
  }

  // A key with nothing to do says why (e.g. u after the undo window), instead of nothing.
  function explain(key) {
    var note = document.querySelector('[data-key-note="' + key + '"]');
    if (!note) return false;
    note.hidden = false;
    return true;
  }

  // Queue page: j/k move a selection through the rows, Enter opens the selected one.
  var rows = Array.prototype.slice.call(document.querySelectorAll("[data-keyboard-list] tr[data-href]"));
  var selected = -1;
  function select(index) {
    if (!rows.length) return;
    if (selected >= 0) rows[selected].classList.remove("selected");
    selected = Math.max(0, Math.min(rows.length - 1, index));
    rows[selected].classList.add("selected");
    rows[selected].scrollIntoView({ block: "nearest" });
  }
  rows.forEach(function (row, index) {
    row.addEventListener("click", function (event) {
      if (event.target.tagName !== "A") window.location = row.dataset.href;
    });
    row.addEventListener("mouseenter", function () { select(index); });
  });

  // Queue page: x selects the current row for a bulk decision; A / R approve / reject them.
  var bulkForm = document.getElementById("bulk-form");
  var bulkCount = document.getElementById("bulk-count");
  function checkbox(row) { return row.querySelector("input[type=checkbox][form=bulk-form]"); }
  function chosen() {
    return rows.filter(function (row) { var box = checkbox(row); return box && box.checked; });
  }
  function showCount() {
    if (!bulkCount) return;
    var n = chosen().length;
    bulkCount.textContent = n ? n + " selected:" : "Select rows with x, then";
  }
  function toggle() {
    if (!bulkForm || !rows.length) return false;
    if (selected < 0) select(0);
    var box = checkbox(rows[selected]);
    if (!box || box.disabled) return true;
    box.checked = !box.checked;
    rows[selected].classList.toggle("chosen", box.checked);
    showCount();
    return true;
  }
  rows.forEach(function (row) {
    var box = checkbox(row);
    if (!box) return;
    box.addEventListener("click", function (event) { event.stopPropagation(); });
    box.addEventListener("change", function () { row.classList.toggle("chosen", box.checked); showCount(); });
  });
  if (bulkForm) {
    bulkForm.addEventListener("submit", function (event) {
      if (!chosen().length) { event.preventDefault(); bulkCount.textContent = "Select at least one row first (x):"; }
    });
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Escape") {
      if (help) help.hidden = true;
      var edit = document.getElementById("edit-form");
      if (edit && !edit.hidden) {
        if (typing(event.target)) event.target.blur();
        edit.hidden = true;
      }
      return;
    }
    if (typing(event.target)) return;
    var key = event.key;
    if (key === "?") { if (help) help.hidden = !help.hidden; event.preventDefault(); return; }
    if (rows.length) {
      if (key === "j") { select(selected + 1); event.preventDefault(); return; }
      if (key === "k") { select(selected - 1); event.preventDefault(); return; }
      if (key === "Enter" && selected >= 0) { window.location = rows[selected].dataset.href; return; }
      if (key === "x" && toggle()) { event.preventDefault(); return; }
    }
    if (["j", "k", "a", "e", "r", "s", "u", "A", "R"].indexOf(key) >= 0 && (press(key) || explain(key))) {
      event.preventDefault();
    }
  });

  // Item page: bring the first piece of evidence into view.
  var evidence = document.querySelector("mark.evidence");
  if (evidence) evidence.scrollIntoView({ block: "center" });
})();
