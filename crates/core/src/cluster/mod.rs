//! Several servers on one store: what each server keeps in memory follows what the others
//! change ([`follow`]).

pub mod follow;
