// Selects the whole value of a read-only field when it gets focus (e.g. an invitation link to copy).
// Markup opts in with a data-select-on-focus attribute: no inline handlers (Content Security Policy).
document.querySelectorAll("[data-select-on-focus]").forEach((field) => {
  field.addEventListener("focus", () => field.select());
});
