//! The planning thread: runs [`Planner::plan`] off the spin thread and hands the newest result
//! over, like a watch channel in each direction (a newer request replaces one not yet started;
//! a newer result replaces one not yet taken). A failing or panicking planning call becomes a
//! [`PlanFailure`]; the thread keeps serving requests.
//!
//! Planning is background work next to the executor's fixed-rate timer: the planning thread runs
//! at a lower scheduling priority (nice + [`PLANNER_NICE`], Linux) and starts rayon's global
//! pool, whose threads (the network's CPU kernels) inherit that priority. Best effort: when the
//! pool already exists or the call is refused, planning runs at normal priority.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::planning::{Observation, PlanOutcome, Planner};

/// How much nicer (lower priority) than the rest of the node the planning threads run.
pub const PLANNER_NICE: i32 = 10;

/// Real-time priority (SCHED_FIFO) the spin thread asks for; low among real-time priorities so
/// that drivers and controllers at the usual 50 or more come first.
pub const EXECUTOR_FIFO_PRIORITY: i32 = 20;

/// Puts the calling thread (the spin thread, with the executor's timer) under SCHED_FIFO at
/// [`EXECUTOR_FIFO_PRIORITY`] when the system allows it (root, CAP_SYS_NICE or an `rtprio`
/// limit, as ros2_control's controller manager does); threads it creates later inherit it.
/// Returns whether it worked; otherwise nothing changes.
pub fn request_realtime_priority() -> bool {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param {
            sched_priority: EXECUTOR_FIFO_PRIORITY,
        };
        // SAFETY: `param` is a valid sched_param for the duration of the call; pid 0 is the
        // calling thread on Linux.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// Creates rayon's global pool (the network's CPU threads) from a thread of lower priority, so
/// that its threads inherit it. Call before anything else uses rayon. Returns whether the
/// priority was lowered (false when refused, on other systems, or if the thread failed).
pub fn start_background_pool() -> bool {
    std::thread::Builder::new()
        .name("pool-init".into())
        .spawn(lower_priority)
        .ok()
        .and_then(|t| t.join().ok())
        .unwrap_or(false)
}

/// Lowers the calling thread's priority by [`PLANNER_NICE`] and creates rayon's global pool
/// from it if it does not exist yet. Returns whether the priority was lowered.
fn lower_priority() -> bool {
    #[cfg(target_os = "linux")]
    let lowered = {
        // SAFETY: plain system calls without pointers; `gettid` names the calling thread, whose
        // nice value Linux keeps per thread and which threads it creates inherit.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            let current = libc::getpriority(libc::PRIO_PROCESS, tid);
            libc::setpriority(libc::PRIO_PROCESS, tid, current + PLANNER_NICE) == 0
        }
    };
    #[cfg(not(target_os = "linux"))]
    let lowered = false;
    let _ = rayon::current_num_threads();
    lowered
}

/// One planning request.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    /// Increasing id; results name it.
    pub id: u64,
    pub observation: Observation,
    /// When it was made (node clock, seconds).
    pub requested_secs: f64,
}

/// Why a planning call produced no outcome.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanFailure {
    #[error("planning failed: {0}")]
    Error(String),
    #[error("planning panicked: {0}")]
    Panic(String),
}

/// The answer to a [`PlanRequest`].
#[derive(Debug, Clone)]
pub struct PlanResult {
    pub id: u64,
    pub requested_secs: f64,
    /// Wall-clock seconds of the planning call.
    pub wall_secs: f64,
    pub outcome: Result<PlanOutcome, PlanFailure>,
}

#[derive(Default)]
struct Slots {
    pending: Option<PlanRequest>,
    result: Option<PlanResult>,
    busy: bool,
    shutdown: bool,
    exited: bool,
    lowered_priority: bool,
}

struct Shared {
    slots: Mutex<Slots>,
    /// Signals a new request, shutdown, or the thread's exit.
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        // A panic never happens while the lock is held (planning runs outside it); recover the
        // data anyway rather than propagate a poison.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Handle to the planning thread.
pub struct PlanningWorker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl PlanningWorker {
    /// Starts the thread that owns `planner`.
    pub fn spawn(planner: Planner) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            slots: Mutex::new(Slots::default()),
            changed: Condvar::new(),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("planner".into())
            .spawn(move || serve(planner, &thread_shared))?;
        Ok(PlanningWorker {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `request`, replacing a queued one that has not started.
    pub fn submit(&self, request: PlanRequest) {
        self.shared.lock().pending = Some(request);
        self.shared.changed.notify_all();
    }

    /// Whether a request is being planned or waiting.
    pub fn is_busy(&self) -> bool {
        let slots = self.shared.lock();
        slots.busy || slots.pending.is_some()
    }

    /// Whether the planning thread runs at a lower priority (see the module docs).
    pub fn lowered_priority(&self) -> bool {
        self.shared.lock().lowered_priority
    }

    /// The newest result not yet taken.
    pub fn take_result(&self) -> Option<PlanResult> {
        self.shared.lock().result.take()
    }

    /// Stops the thread: waits up to `timeout` for a running planning call to finish, then
    /// returns either way (a thread still planning is left to end with the process). Returns
    /// whether the thread exited.
    pub fn shutdown(mut self, timeout: Duration) -> bool {
        let exited = self.stop(timeout);
        if exited {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
        exited
    }

    fn stop(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut slots = self.shared.lock();
        slots.shutdown = true;
        slots.pending = None;
        self.shared.changed.notify_all();
        while !slots.exited {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            slots = match self.shared.changed.wait_timeout(slots, left) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }
}

impl Drop for PlanningWorker {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop(Duration::ZERO);
        }
    }
}

fn serve(mut planner: Planner, shared: &Shared) {
    let lowered = lower_priority();
    shared.lock().lowered_priority = lowered;
    loop {
        let request = {
            let mut slots = shared.lock();
            loop {
                if slots.shutdown {
                    slots.exited = true;
                    shared.changed.notify_all();
                    return;
                }
                if let Some(request) = slots.pending.take() {
                    slots.busy = true;
                    break request;
                }
                slots = match shared.changed.wait(slots) {
                    Ok(guard) => guard,
                    Err(p) => p.into_inner(),
                };
            }
        };
        let started = Instant::now();
        let outcome = plan_once(&mut planner, &request.observation);
        let result = PlanResult {
            id: request.id,
            requested_secs: request.requested_secs,
            wall_secs: started.elapsed().as_secs_f64(),
            outcome,
        };
        let mut slots = shared.lock();
        slots.result = Some(result);
        slots.busy = false;
    }
}

/// One planning call; a panic is caught and the planner's selection memory reset (it may be
/// half-updated).
pub(crate) fn plan_once(
    planner: &mut Planner,
    observation: &Observation,
) -> Result<PlanOutcome, PlanFailure> {
    let result = catch_unwind(AssertUnwindSafe(|| planner.plan(observation)));
    match result {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(e)) => Err(PlanFailure::Error(e.to_string())),
        Err(payload) => {
            planner.reset();
            Err(PlanFailure::Panic(panic_message(payload.as_ref())))
        }
    }
}

/// The text of a caught panic.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planning::{
        CandidateBatch, CandidateSource, ConditionTerm, ModeRequest, ObservationInput,
        PlannerConfig,
    };
    use crate::robot::{PlanarArm, RobotDescription};
    use crate::Result;

    /// Straight paths to a fixed end; panics or fails on request.
    struct Scripted {
        terms: Vec<ConditionTerm>,
        names: Vec<String>,
        calls: usize,
    }

    impl CandidateSource for Scripted {
        fn condition_terms(&self) -> &[ConditionTerm] {
            &self.terms
        }
        fn mode_names(&self) -> &[String] {
            &self.names
        }
        fn sample(
            &mut self,
            condition: &[f32],
            _label: Option<usize>,
            num_samples: usize,
            _seed: u64,
        ) -> Result<CandidateBatch> {
            self.calls += 1;
            match self.calls {
                2 => panic!("scripted panic"),
                3 => return Err(crate::Error::Invalid("scripted failure".into())),
                _ => {}
            }
            let start = [f64::from(condition[0]), f64::from(condition[1])];
            let end = [0.6, 0.9];
            let horizon = 8;
            let mut positions = Vec::new();
            for _ in 0..num_samples {
                for t in 0..horizon {
                    let s = t as f64 / (horizon - 1) as f64;
                    positions.push(start[0] + s * (end[0] - start[0]));
                    positions.push(start[1] + s * (end[1] - start[1]));
                }
            }
            CandidateBatch::new(num_samples, horizon, 2, positions, vec![0.0; num_samples])
        }
    }

    fn observation(arm: &PlanarArm) -> Observation {
        let goal = arm.end_effector(&[0.6, 0.9]);
        Observation::new(
            ObservationInput {
                joints: vec![("shoulder".into(), 0.0), ("elbow".into(), 0.5)],
                goal_m: goal,
                mode: ModeRequest::Any,
                ..Default::default()
            },
            arm,
            &[],
        )
        .unwrap()
    }

    fn wait_result(worker: &PlanningWorker) -> PlanResult {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(result) = worker.take_result() {
                return result;
            }
            assert!(Instant::now() < deadline, "no result");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn plans_off_thread_and_survives_panics_and_errors() {
        let arm = PlanarArm::new(RobotDescription::planar_2link()).unwrap();
        let source = Scripted {
            terms: vec![ConditionTerm::JointPositions, ConditionTerm::GoalPosition],
            names: vec![],
            calls: 0,
        };
        let config = PlannerConfig {
            num_samples: 4,
            ..PlannerConfig::default()
        };
        let planner = Planner::new(arm.clone(), Box::new(source), config).unwrap();
        let worker = PlanningWorker::spawn(planner).unwrap();
        let obs = observation(&arm);
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let mut outcomes = Vec::new();
        for id in 0..4 {
            worker.submit(PlanRequest {
                id,
                observation: obs.clone(),
                requested_secs: id as f64,
            });
            let result = wait_result(&worker);
            assert_eq!(result.id, id);
            outcomes.push(result.outcome);
        }
        std::panic::set_hook(hook);
        assert!(outcomes[0].as_ref().unwrap().plan.is_some());
        assert_eq!(
            outcomes[1].as_ref().unwrap_err(),
            &PlanFailure::Panic("scripted panic".into())
        );
        let failure = outcomes[2].as_ref().unwrap_err().to_string();
        assert!(failure.contains("scripted failure"), "{failure}");
        assert!(
            outcomes[3].as_ref().unwrap().plan.is_some(),
            "still serving"
        );
        assert!(!worker.is_busy());
        assert!(worker.shutdown(Duration::from_secs(5)));
    }

    /// Blocks its first call until the gate opens.
    struct Gated {
        inner: Scripted,
        gate: Option<std::sync::mpsc::Receiver<()>>,
    }

    impl CandidateSource for Gated {
        fn condition_terms(&self) -> &[ConditionTerm] {
            self.inner.condition_terms()
        }
        fn mode_names(&self) -> &[String] {
            self.inner.mode_names()
        }
        fn sample(
            &mut self,
            condition: &[f32],
            label: Option<usize>,
            num_samples: usize,
            seed: u64,
        ) -> Result<CandidateBatch> {
            if let Some(gate) = self.gate.take() {
                gate.recv().unwrap();
            }
            self.inner.sample(condition, label, num_samples, seed)
        }
    }

    #[test]
    fn a_newer_request_replaces_a_waiting_one() {
        let arm = PlanarArm::new(RobotDescription::planar_2link()).unwrap();
        let (open, gate) = std::sync::mpsc::channel();
        let source = Gated {
            inner: Scripted {
                terms: vec![ConditionTerm::JointPositions, ConditionTerm::GoalPosition],
                names: vec![],
                calls: 10,
            },
            gate: Some(gate),
        };
        let planner =
            Planner::new(arm.clone(), Box::new(source), PlannerConfig::default()).unwrap();
        let worker = PlanningWorker::spawn(planner).unwrap();
        let obs = observation(&arm);
        let request = |id| PlanRequest {
            id,
            observation: obs.clone(),
            requested_secs: 0.0,
        };
        worker.submit(request(1));
        let deadline = Instant::now() + Duration::from_secs(10);
        while worker.shared.lock().pending.is_some() {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(worker.is_busy(), "request 1 is being planned");
        worker.submit(request(2));
        worker.submit(request(3));
        open.send(()).unwrap();
        let mut seen = Vec::new();
        while seen.last() != Some(&3) {
            seen.push(wait_result(&worker).id);
        }
        assert!(
            !seen.contains(&2),
            "request 2 was replaced before it started: {seen:?}"
        );
        assert!(worker.shutdown(Duration::from_secs(5)));
    }
}
