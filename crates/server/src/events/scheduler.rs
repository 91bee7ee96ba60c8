//! The scheduler: starts scheduled flows on their cron. A slot is claimed in the store before
//! its instance starts, so a restarted server never fires a slot again; slots missed while it
//! was down collapse into one firing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use faasbox_events::CronSchedule;
use faasbox_store::ScheduleRecord;
use serde_json::json;

use super::RunnerError;
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
            continue;
        };
        let schedules = match state
            .blocking(|s| s.store.schedules().map_err(Into::into))
            .await
        {
            Ok(schedules) => schedules,
            Err(e) => {
                tracing::error!("reading schedules: {e}");
                continue;
            }
        };
        let now_ms = now_ms();
        for schedule in schedules {
            let Some(slot) = due_slot(&mut parsed, &schedule, now_ms) else {
                continue;
            };
            if !claim(&state, &schedule, slot).await {
                continue;
            }
            let instance_id = uuid::Uuid::new_v4().to_string();
            let started = runner
                .start_instance(
                    &schedule.namespace,
                    &schedule.flow,
                    &instance_id,
                    json!({}),
                    "cron",
                )
                .await;
            if let Err(RunnerError::Gone(why) | RunnerError::Retry(why)) = started {
                tracing::warn!(flow = %schedule.flow, namespace = %schedule.namespace, "scheduled start failed: {why}");
            }
        }
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

async fn claim(state: &Arc<AppState>, schedule: &ScheduleRecord, slot: i64) -> bool {
    let s = schedule.clone();
    state
        .blocking(move |st| {
            st.store
                .claim_schedule_slot(&s.namespace, &s.flow, &s.cron, slot)
                .map_err(Into::into)
        })
        .await
        .unwrap_or_else(|e| {
            tracing::error!("claiming a schedule slot: {e}");
            false
        })
}

/// Now, in milliseconds since the Unix epoch (the store's clock for events and schedules).
pub fn now_ms() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000
}
