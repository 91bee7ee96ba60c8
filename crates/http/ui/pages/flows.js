// Placeholder page (owner: E ui-flow); see docs/UI.md.
export default async function render(main) {
  main.textContent = "This page is not written yet.";
}
