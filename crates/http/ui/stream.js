// Placeholder module (owner: C ui-shell); see docs/UI.md.
export {};
