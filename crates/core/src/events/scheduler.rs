//! The scheduler: starts scheduled flows on their cron. A slot is claimed in the store in the
//! same transaction that creates its instance, so every slot fires exactly once: a restarted
//! server never fires a slot again, and an instance whose claim committed just before a crash
//! is driven by the start-up resume. Slots missed while the server was down collapse into one
//! firing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use faasbox_events::CronSchedule;
use faasbox_store::ScheduleRecord;

use crate::state::AppState;

/// Fine enough for every-second schedules.
const TICK: Duration = Duration::from_millis(200);

pub async fn run(state: Arc<AppState>) {
    let mut parsed: HashMap<String, CronSchedule> = HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(runner) = state.events.runner() else {
            // The engine is not installed yet.
            continue;
        };
        let schedules = match state.store.schedules().await {
            Ok(schedules) => schedules,
            Err(e) => {
                tracing::error!("reading schedules: {e}");
                continue;
            }
        };
        let now_ms = crate::clock::store_ms();
        for schedule in schedules {
            let Some(slot) = due_slot(&mut parsed, &schedule, now_ms) else {
                continue;
            };
            match runner.claim_slot(&schedule, slot).await {
                Ok(Some(instance_id)) => {
                    crash_after_claim_if_asked();
                    runner.drive_created(instance_id);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(flow = %schedule.flow, namespace = %schedule.namespace, "scheduled start failed, retried at the next tick: {}", e.message);
                }
            }
        }
    }
}

/// Test hook (`crates/cli/tests/flow_events.rs`): with this variable set, the server exits
/// right after a slot and its instance were stored, before driving it — where a crash would.
const CRASH_AFTER_CLAIM: &str = "FAASBOX_TEST_CRASH_AFTER_CRON_CLAIM";

fn crash_after_claim_if_asked() {
    if std::env::var_os(CRASH_AFTER_CLAIM).is_some() {
        tracing::warn!("{CRASH_AFTER_CLAIM} is set: exiting after a cron claim");
        std::process::exit(86);
    }
}

fn due_slot(
    parsed: &mut HashMap<String, CronSchedule>,
    schedule: &ScheduleRecord,
    now_ms: i64,
) -> Option<i64> {
    if !parsed.contains_key(&schedule.cron) {
        match CronSchedule::parse(&schedule.cron) {
            Ok(cron) => {
                parsed.insert(schedule.cron.clone(), cron);
            }
            Err(e) => {
                tracing::error!(flow = %schedule.flow, "stored schedule cannot be read: {e}");
                return None;
            }
        }
    }
    parsed
        .get(&schedule.cron)?
        .due(schedule.last_fired_ms, now_ms)
}
