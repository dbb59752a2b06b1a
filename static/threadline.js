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
    var el = document.querySelector('[data-key="' + key + '"]:not([disabled])');
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

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Escape") {
      if (help) help.hidden = true;
      var edit = document.getElementById("edit-form");
      if (edit && typing(event.target)) { event.target.blur(); edit.hidden = true; }
      return;
    }
    if (typing(event.target)) return;
    var key = event.key;
    if (key === "?") { if (help) help.hidden = !help.hidden; event.preventDefault(); return; }
    if (rows.length) {
      if (key === "j") { select(selected + 1); event.preventDefault(); return; }
      if (key === "k") { select(selected - 1); event.preventDefault(); return; }
      if (key === "Enter" && selected >= 0) { window.location = rows[selected].dataset.href; return; }
    }
    if (["j", "k", "a", "e", "r", "s", "u"].indexOf(key) >= 0 && press(key)) event.preventDefault();
  });

  // Item page: bring the first piece of evidence into view.
  var evidence = document.querySelector("mark.evidence");
  if (evidence) evidence.scrollIntoView({ block: "center" });
})();
