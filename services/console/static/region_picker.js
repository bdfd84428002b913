// The apply form's regency list narrowed to the province chosen (a group per province). Without this script the
// whole list, grouped by province, still works: the permits service checks that the regency is in the province.
(function () {
  "use strict";
  var province = document.getElementById("f-facility-province_code");
  var regency = document.getElementById("f-facility-regency_code");
  if (!province || !regency) { return; }
  var narrow = function () {
    var chosen = province.value;
    Array.prototype.forEach.call(regency.querySelectorAll("optgroup"), function (group) {
      var other = chosen !== "" && group.getAttribute("data-group") !== chosen;
      group.hidden = other;
      group.disabled = other;
    });
    var selected = regency.options[regency.selectedIndex];
    if (selected && selected.parentNode.disabled) { regency.value = ""; }
  };
  province.addEventListener("change", narrow);
  narrow();
}());
