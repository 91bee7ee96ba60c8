//! The credentials check of a route's call (`none`, `token`, `basic`, `api-key`, `hmac-sha256`,
//! `slack`): a request that fails it is 401 and never reaches the function.
