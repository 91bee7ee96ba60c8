//! A route's limits: the body size, a token-bucket rate limit per client address (429 with
//! `Retry-After`) and the time a blocking call may take.
