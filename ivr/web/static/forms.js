/* Configuration forms: add and remove table rows (holidays, aging steps) in place.
   Without JavaScript the forms still work: one blank row is always sent, and a row
   whose fields are emptied is dropped by the server. */
"use strict";
(() => {
  // A form sent back with errors: take keyboard users straight to the first one.
  const invalid = document.querySelector('[aria-invalid="true"]');
  if (invalid) invalid.focus();
  document.addEventListener("click", (event) => {
    const remove = event.target.closest("button.remove-holiday, button.remove-row");
    if (remove) {
      const row = remove.closest("tr");
      const body = row.parentElement;
      if (body.rows.length > 1) row.remove();
      else row.querySelectorAll("input, select").forEach((input) => {
        if (input.tagName === "SELECT") input.selectedIndex = 0; else input.value = "";
      });
      (body.querySelector("input") || document.getElementById("main")).focus();
      return;
    }
    const add = event.target.closest("#add-holiday, button.add-row");
    if (add) {
      const body = add.id === "add-holiday" ? document.querySelector("#holiday-table tbody")
        : document.getElementById(add.dataset.table).tBodies[0];
      const last = body.rows[body.rows.length - 1];
      const copy = last.cloneNode(true);
      copy.querySelectorAll("input, select").forEach((input) => {
        if (input.tagName === "SELECT") input.selectedIndex = 0;
        else if (input.type === "checkbox") input.checked = false;
        else input.value = "";
        input.removeAttribute("aria-invalid");
        input.removeAttribute("aria-describedby");
        const n = body.rows.length + 1;
        const label = input.getAttribute("aria-label");
        if (label) input.setAttribute("aria-label", label.replace(/\d+$/, String(n)));
      });
      copy.querySelectorAll(".field-error").forEach((p) => p.remove());
      body.append(copy);
      copy.querySelector("input").focus();
    }
  });
})();
