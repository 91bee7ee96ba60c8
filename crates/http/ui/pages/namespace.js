// Placeholder page (owner: C ui-shell); see docs/UI.md.
export default async function render(main) {
  main.textContent = "This page is not written yet.";
}
