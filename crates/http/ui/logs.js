// Placeholder module (owner: D ui-fn); see docs/UI.md.
export {};
