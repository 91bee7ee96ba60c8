//! The backend suite: the cases every store backend must pass, written against the traits.
//! A backend crate runs them all with [`backend_suite!`](crate::backend_suite) in its tests,
//! given an expression that makes a fresh [`Backend`] (an empty database) for each case:
//!
//! ```ignore
//! faasbox_store::backend_suite!(MyTestDatabase::new());
//! ```
//!
//! The macro expands to one `#[tokio::test]` per case, so the calling crate needs `tokio`
//! (with `macros` and `rt`) among its dev-dependencies.

mod changes;
mod code;
mod events;
mod flows;
mod functions;
mod image_names;
mod images;
mod invocations;
mod namespaces;
mod nodes;
mod routes;
mod runs;
mod secrets;
mod sessions;

use std::sync::Arc;

use async_trait::async_trait;

pub use changes::*;
pub use code::*;
pub use events::*;
pub use flows::*;
pub use functions::*;
pub use image_names::*;
pub use images::*;
pub use invocations::*;
pub use namespaces::*;
pub use nodes::*;
pub use routes::*;
pub use runs::*;
pub use secrets::*;
pub use sessions::*;

use crate::Store;

/// One case's database, empty at first.
#[async_trait]
pub trait Backend: Send + Sync {
    /// A store on this database. Opening it again (after dropping the store) is a restart: the
    /// new store sees everything the earlier ones wrote.
    async fn open(&self) -> Arc<dyn Store>;
}

/// Expands to one `#[tokio::test]` per case of the backend suite; `$backend` makes each
/// case's [`Backend`](crate::suite::Backend) (a fresh, empty database).
#[macro_export]
macro_rules! backend_suite {
    ($backend:expr) => {
        $crate::backend_suite!(@cases ($backend)
            namespaces_are_unique_and_deletion_cascades
            function_needs_namespace_and_update_keeps_created
            revisions_are_numbered_kept_rolled_back_and_deleted_with_their_function
            logs_keep_their_order_across_appends
            interrupted_calls_are_marked_after_reopen
            newest_lines_of_one_function_then_only_new_ones
            a_function_without_lines_starts_followers_at_the_newest_line
            first_data_key_wins
            secrets_need_namespace_and_data_key_and_keep_created
            registries_are_unique_per_namespace_and_host
            deleting_a_namespace_deletes_its_secrets_but_not_global_ones
            rewrap_changes_every_key_or_none
            flow_instances_keep_checkpoints_finished_states_logs_and_variables
            an_instance_keeps_its_calls_and_its_functions_lines_by_state
            an_instance_keeps_its_subflow_depth_across_a_reopen
            an_instance_keeps_its_steps_in_order
            progress_is_written_in_order_and_fenced
            duplicate_events_are_accepted_once
            dispatch_fires_waits_once_and_starts_every_time
            undispatched_events_survive_a_reopen
            a_late_wait_sees_events_dispatched_after_its_watermark
            subscriptions_fire_for_later_events_and_their_delete_drops_their_deliveries
            gathered_progress_is_kept_and_cleared_on_fire
            redeploy_replaces_start_listeners_and_namespace_deletion_removes_everything
            schedule_slots_are_claimed_once
            a_claimed_slot_s_instance_is_stored_with_the_claim_and_survives_a_crash
            delayed_events_are_accepted_when_due_and_survive_a_reopen
            failures_are_kept_replaced_cleared_and_go_with_their_namespace
            code_records_keep_status_logs_and_cache_and_go_with_their_namespace
            a_build_log_is_cut_at_its_bound
            runs_keep_what_they_were_asked_with_and_how_they_ended
            queued_runs_are_claimed_once_and_cancelled_only_while_queued
            interrupted_async_runs_run_once_more_then_crash
            recovering_a_node_takes_only_its_own_runs
            purge_removes_old_runs_and_runs_beyond_the_count_with_their_logs
            runs_and_instances_are_counted_by_status
            lists_page_by_keyset_within_their_namespace
            routes_keep_created_are_listed_in_order_and_go_with_their_namespace
            tokens_need_their_namespace_are_listed_oldest_first_and_go_with_it
            global_services_keep_created_and_stay_out_of_namespaces
            services_are_replaced_whole_listed_and_go_with_their_namespace
            flows_need_their_namespace_keep_created_and_list_by_path
            instances_list_newest_first_keep_metadata_and_variables_by_scope
            invocations_are_listed_newest_first_within_their_namespace
            listeners_schedules_and_held_events_need_their_namespace
            waits_are_listed_with_their_deadlines_and_watermarks_follow_reception
            a_held_event_repeating_an_accepted_one_is_dropped
            gathered_events_are_replaced_and_expire_and_a_late_start_fires_for_each_missed
            changes_are_read_in_order_after_a_seq_and_purged_but_the_newest
            a_token_is_found_by_its_hash_until_it_is_deleted
            the_first_admin_token_is_inserted_once
            instances_are_leased_taken_over_once_and_fence_the_old_owner
            a_wait_is_resumed_once_and_unfenced_writes_always_land
            deliveries_are_claimed_once_until_their_claim_expires_and_waits_come_due
            nodes_beat_are_taken_over_once_rejoin_and_leave
            sessions_are_found_until_closed_and_touched_forward
            opening_a_session_sweeps_expired_ones_and_keeps_the_caps
            image_names_are_replaced_listed_deleted_and_go_with_their_namespace
        );
    };
    (@cases ($backend:expr) $($case:ident)*) => {
        $(
            #[tokio::test]
            async fn $case() {
                let backend = $backend;
                $crate::suite::$case(&backend).await;
            }
        )*
    };
}
