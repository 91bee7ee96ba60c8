//! PLACEHOLDER of the pg-base branch (owner: the pg-server helper): copying rows into an empty
//! PostgreSQL store, for `faasbox admin migrate-store`.
