// Placeholder module (owner: E ui-flow); see docs/UI.md.
export {};
