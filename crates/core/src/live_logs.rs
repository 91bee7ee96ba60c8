//! Function log lines as calls print them, for whoever follows a function's logs
//! (`GET …/functions/{fn}/logs?follow=true`, `faasbox logs NS/FN --follow`): each line tagged
//! with its run id. Lines are read from the agent while a call runs only when someone follows.

/// The followers of each function's logs and the lines sent to them.
#[derive(Default)]
pub struct LiveLogs {}
