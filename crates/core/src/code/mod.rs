//! Functions from code (issue 14): what a call of a `code` function sends and checks
//! ([`call`]).

pub mod call;
