//! Tests of the agent client against the real agent binary (no container, no root).

mod agent_tcp;
