// The weekly report's draft, kept in this browser as the company types (a key per permit and period), restored
// when the form opens again and cleared once the report is received. The form works without this script.
(function () {
  "use strict";
  var store;
  try { store = window.localStorage; } catch (e) { return; }
  if (!store) { return; }
  var done = document.getElementById("report-draft-done");
  if (done) { store.removeItem(done.getAttribute("data-draft-key")); }
  var form = document.getElementById("report-form");
  if (!form) { return; }
  var prefix = form.getAttribute("data-draft-prefix");
  var period = form.elements.namedItem("period_id");
  var key = function () { return prefix + (period ? period.value : ""); };
  var fields = function () {
    return Array.prototype.filter.call(form.elements, function (el) {
      return el.name && el.name !== "csrf" && el.name !== "period_id" && el.type !== "submit";
    });
  };
  var save = function () {
    var values = {};
    fields().forEach(function (el) { values[el.name] = el.type === "checkbox" ? el.checked : el.value; });
    try { store.setItem(key(), JSON.stringify(values)); } catch (e) { /* full or refused: no draft */ }
  };
  var restore = function () {
    var saved;
    try { saved = JSON.parse(store.getItem(key()) || "null"); } catch (e) { saved = null; }
    if (!saved || typeof saved !== "object") { return false; }
    fields().forEach(function (el) {
      if (!Object.prototype.hasOwnProperty.call(saved, el.name)) { return; }
      if (el.type === "checkbox") { el.checked = saved[el.name] === true; }
      else { el.value = String(saved[el.name]).slice(0, 4000); }
    });
    return true;
  };
  // After a refusal the page shows what was sent: that is the draft, saved again rather than replaced.
  var restored = form.hasAttribute("data-refused") ? (save(), false) : restore();
  var status = document.getElementById("draft-status");
  if (status) { status.hidden = false; }
  form.addEventListener("input", save);
  form.addEventListener("change", function (event) {
    if (event.target === period) { restore(); }
    save();
  });
  if (restored && status) { status.setAttribute("data-restored", "yes"); }
}());
