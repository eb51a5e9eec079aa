// Small enhancements on top of pages that work without scripts: the resident-ID check as the
// clerk types (asked of the console, which applies intake's rule), and more petitioner rows.
"use strict";

function checkResidentId(input) {
  const note = document.getElementById(input.getAttribute("aria-describedby"));
  const row = input.closest(".petitioner");
  const type = row && row.querySelector("select[name=p_id_type]");
  const value = input.value.trim();
  if (!note) return;
  if (!value || (type && type.value !== "1")) { note.textContent = ""; note.className = "note"; return; }
  if (value.length < 18) { note.textContent = "还需 " + (18 - value.length) + " 位"; note.className = "note"; return; }
  // posted with the form's token: the number stays out of URLs and access logs
  const form = input.form;
  const csrf = form && form.querySelector("input[name=csrf]");
  const body = new URLSearchParams({ v: value, csrf: csrf ? csrf.value : "" });
  fetch("/check/resident-id", { method: "POST", body, credentials: "same-origin" })
    .then((r) => r.json())
    .then((a) => {
      if (input.value.trim() !== value) return;
      note.textContent = a.message;
      note.className = a.ok ? "note ok" : "note bad";
      input.setAttribute("aria-invalid", a.ok ? "false" : "true");
    })
    .catch(() => {});
}

function addPetitioner(button) {
  const rows = document.querySelectorAll(".petitioner");
  const last = rows[rows.length - 1];
  const copy = last.cloneNode(true);
  const n = rows.length + 1;
  copy.querySelectorAll("[id]").forEach((el) => { el.id = el.id.replace(/_\d+(_note)?$/, "_" + n + "$1"); });
  copy.querySelectorAll("label[for]").forEach((el) => {
    el.htmlFor = el.htmlFor.replace(/_\d+$/, "_" + n);
    el.textContent = el.textContent.replace(/\(\d+\)/, "(" + n + ")");
  });
  copy.querySelectorAll("[aria-describedby]").forEach((el) => {
    el.setAttribute("aria-describedby", el.getAttribute("aria-describedby").replace(/_\d+_note$/, "_" + n + "_note"));
  });
  copy.querySelectorAll("input").forEach((el) => { el.value = ""; el.removeAttribute("aria-invalid"); });
  copy.querySelectorAll(".note").forEach((el) => { el.textContent = ""; });
  last.after(copy);
  copy.querySelector("input").focus();
}

document.addEventListener("input", (e) => {
  if (e.target.matches("input[data-check=resident-id]")) checkResidentId(e.target);
});
document.addEventListener("click", (e) => {
  if (e.target.matches("button[data-add=petitioner]")) addPetitioner(e.target);
});
// A form sent once: the button waits for the answer (the console also refuses a resend).
document.addEventListener("submit", (e) => {
  const button = e.submitter;
  if (button && e.target.matches("form.petition")) {
    setTimeout(() => { button.disabled = true; }, 0);
  }
});
