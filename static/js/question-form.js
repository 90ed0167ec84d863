// The question form shows only the fields of the chosen kind (progressive enhancement: without
// JavaScript every field shows and the server ignores those of other kinds). Fields opt in with
// data-question-kinds="kind ..." on their input; the kind select has data-question-kind.
// No inline handlers (Content Security Policy).
document.querySelectorAll("form[data-question-form]").forEach((form) => {
  const kind = form.querySelector("[data-question-kind]");
  if (!kind) return;
  const fields = Array.from(form.querySelectorAll("[data-question-kinds]"));
  const update = () => {
    fields.forEach((field) => {
      const applies = field.dataset.questionKinds.split(" ").includes(kind.value);
      const row = field.closest("p") || field;
      row.hidden = !applies;
      field.disabled = !applies;
    });
  };
  kind.addEventListener("change", update);
  update();
});
