// The faasbox UI's entry point (replaced by the real shell: see docs/UI.md).
const main = document.getElementById("main");
main.textContent = "faasbox";
main.dataset.page = "placeholder";
main.dataset.ready = "true";
