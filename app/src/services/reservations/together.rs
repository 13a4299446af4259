//! Bookings committed together: the bookings this process has waiting at the same moment
//! share their statements and one commit.
//!
//! Why: most of a booking statement's database time is the statement's own, not its row's:
//! starting the executor, the reservation's CHECK expressions read for each statement, the
//! triggers' set-up. Measured on the settlement benchmark's database, a booking alone took
//! about 1.9 ms of database time, about 0.65 ms each in a statement of eight and 0.53 ms
//! each in one of 32 (BENCHMARKS.md, 2026-12-05). Nothing per booking is shared: each still writes its own
//! reservation, allocations, ledger posting, events and audit row, and every trigger and
//! deferred check runs for each row as before.
//!
//! Two lanes, each with its own queue ([`Lane`]): the one-statement bookings, and the firm
//! bookings that must preempt, which one transaction books and preempts for together.
//!
//! How: a request queues its row and, while fewer than [`WORKERS`] are busy, starts a
//! worker. A worker takes up to [`GROUP`] waiting rows, books them with [`book`] (or
//! [`book_preempting`]), answers each, and goes on while rows wait. Nothing waits to fill a
//! group: a group is whatever queued while the previous statements ran, so a booking alone
//! is booked at once. Rows of one pool whose windows overlap never share a group (they
//! would choose with one snapshot and pick the same units); the later one waits for the
//! next. A group commits all or nothing: when the database refuses it, each of its bookings
//! is sent back to be booked alone ([`Failed::Group`]), where it meets its own error, if
//! any, as it would have without the group. When the connection breaks instead, the group
//! may have committed unheard, so none is booked again: each gets the error a booking alone
//! would have.

use super::book::{book, book_preempting, BookRow, Booked};
use crate::services::error::may_have_taken_effect;
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Statements in flight per database at once, and the most bookings in one statement.
/// Settlement-only runs of the benchmark (32 clients, two cores, 10 s each, 2026-12-05),
/// bookings per second by (workers, group): (2, 16) 2,252 and 2,120; (2, 24) 1,988;
/// (2, 32) 2,063; (3, 12) 1,825; (4, 8) 1,806 and 1,709; (1, 32) 1,848; (8, 4) 1,329.
/// Two keep both cores busy (one statement runs while the other commits); more make
/// smaller groups, and a larger group holds its units' locks long enough that the other
/// group's choices walk further.
/// The preempting lane keeps the same two: a pgbench replay of its transaction (16
/// preempting bookings each, 2026-12-05) committed 1,014 bookings/s with two clients, 920
/// with three and 738 with four.
const WORKERS: usize = 2;
const GROUP: usize = 16;

/// Which bookings a group holds, and so what its worker sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Lane {
    /// Bookings written whole or not at all by one statement, committed on its own
    /// ([`book`]).
    Whole,
    /// Firm bookings the pool read showed short of free units: booked, and preempted for,
    /// in one transaction ([`book_preempting`]). Measured with pgbench on the settlement
    /// benchmark's database, such a booking alone took about 4.5 ms of database CPU with
    /// 32 clients; 16 in one transaction about 1.9 ms each (BENCHMARKS.md, 2026-12-05). A
    /// row that finds no other waiting is booked the same way, alone: the worker stays
    /// busy with it, so that the rows arriving meanwhile queue for the next group.
    Preempting,
}

/// Why [`book`] gave no answer for a row.
pub(super) enum Failed {
    /// The database refused the statements of a group of several (or, in the preempting
    /// lane, some row of the group could not have all its units): this row was not
    /// written, and is handed back to be booked alone.
    Group(Box<BookRow>),
    /// This row's own error: it was booked alone, or its group's connection broke (then
    /// whether it was written is unknown, and the error says so).
    Own(sqlx::Error),
}

struct Job {
    row: BookRow,
    answer: oneshot::Sender<Result<Option<Booked>, Failed>>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Job>,
    workers: usize,
}

/// One queue per database pool and lane. A pool is known by its connection options'
/// address, which it keeps for its whole life (tests run many pools in one process, each
/// on its own runtime).
type Queues = HashMap<(usize, Lane), Queue>;

fn queues() -> &'static Mutex<Queues> {
    static QUEUES: std::sync::OnceLock<Mutex<Queues>> = std::sync::OnceLock::new();
    QUEUES.get_or_init(Default::default)
}

fn pool_key(db: &PgPool, lane: Lane) -> (usize, Lane) {
    (Arc::as_ptr(&db.connect_options()) as usize, lane)
}

fn lock() -> std::sync::MutexGuard<'static, Queues> {
    // A worker that panicked while holding the lock left the queue consistent: every change
    // under it is a single push, pop or count.
    queues().lock().unwrap_or_else(|e| e.into_inner())
}

/// Books `row` (written whole or not at all, committed before the answer) in a group of
/// `lane` with whatever else is waiting. `Ok(None)` as [`book`] says it.
pub(super) async fn join(db: &PgPool, lane: Lane, row: BookRow) -> Result<Option<Booked>, Failed> {
    let (answer, answered) = oneshot::channel();
    let key = pool_key(db, lane);
    let start_worker = {
        let mut queues = lock();
        let queue = queues.entry(key).or_default();
        queue.waiting.push_back(Job { row, answer });
        let start = queue.workers < WORKERS;
        if start {
            queue.workers += 1;
        }
        start
    };
    if start_worker {
        tokio::spawn(work(key, db.clone()));
    }
    // The worker was stopped with the runtime: whether the group committed is unknown, so
    // this is not retried here (a request key makes the caller's retry safe).
    answered
        .await
        .unwrap_or(Err(Failed::Own(sqlx::Error::WorkerCrashed)))
}

/// Counts a worker out when it stops for any reason other than an empty queue (its task
/// dropped with its runtime, or a panic), so that the queue starts another. After a panic
/// it starts the replacement itself when rows are waiting: a request starts a worker only
/// while fewer than [`WORKERS`] are counted in, and a worker that goes on normally takes
/// what waits, so rows that queued while every worker was busy would, if those workers all
/// panicked, wait for the next booking to arrive. (A task dropped with its runtime has no
/// runtime to start one on, and its waiting requests are dropped with it.)
struct Slot {
    key: (usize, Lane),
    db: PgPool,
    done: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut queues = lock();
        let Some(queue) = queues.get_mut(&self.key) else {
            return;
        };
        queue.workers -= 1;
        if std::thread::panicking() && !queue.waiting.is_empty() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                // The replacement runs later, on the runtime: spawning does not take the lock.
                queue.workers += 1;
                runtime.spawn(work(self.key, self.db.clone()));
            }
        }
    }
}

async fn work(key: (usize, Lane), db: PgPool) {
    let mut slot = Slot {
        key,
        db: db.clone(),
        done: false,
    };
    let mut conn = None;
    loop {
        let jobs = {
            let mut queues = lock();
            let Some(queue) = queues.get_mut(&key) else {
                slot.done = true;
                return;
            };
            let jobs = take_group(&mut queue.waiting);
            if jobs.is_empty() {
                // Counted out under the same lock a request queues under: no row is left
                // waiting without a worker.
                queue.workers -= 1;
                if queue.workers == 0 {
                    queues.remove(&key);
                }
                slot.done = true;
                return;
            }
            jobs
        };
        let rows: Vec<&BookRow> = jobs.iter().map(|j| &j.row).collect();
        let written = book_on(&db, key.1, &mut conn, &rows).await;
        drop(rows);
        match written {
            Ok(None) => {
                // Some booking could not have all its units: the transaction was rolled back.
                for job in jobs {
                    let _ = job.answer.send(Err(Failed::Group(Box::new(job.row))));
                }
            }
            Ok(Some(written)) => {
                for (job, b) in jobs.into_iter().zip(written) {
                    // A request that stopped waiting (its client left) has its booking all
                    // the same, as it would have had it booked alone.
                    let _ = job.answer.send(Ok(b));
                }
            }
            Err(e) if jobs.len() == 1 => {
                let job = jobs.into_iter().next().expect("one job");
                let _ = job.answer.send(Err(Failed::Own(e)));
            }
            Err(e) if may_have_taken_effect(&e) => {
                // The connection broke: the group may have committed with its answer lost.
                // Booking each alone could book it twice, so each hears that its outcome
                // is unknown, as a booking alone would (a request key makes a retry safe).
                tracing::warn!(error = %e, bookings = jobs.len(), "a group of bookings lost its connection");
                for job in jobs {
                    let unknown =
                        std::io::Error::other(format!("the group's connection broke: {e}"));
                    let _ = job.answer.send(Err(Failed::Own(sqlx::Error::Io(unknown))));
                }
            }
            Err(e) => {
                // The database refused the statement, so it wrote nothing.
                tracing::debug!(error = %e, bookings = jobs.len(), "a group of bookings failed; each is booked alone");
                for job in jobs {
                    let _ = job.answer.send(Err(Failed::Group(Box::new(job.row))));
                }
            }
        }
    }
}

/// Books `rows` of `lane` on the worker's connection, taken from the pool the first time.
/// The worker keeps it while groups follow each other: the pool checks each connection it
/// hands out with a round trip of its own. A connection whose statement failed is given
/// back, in case the failure was the connection's. `None`: the preempting lane's
/// transaction could not give every row all its units, and wrote nothing.
async fn book_on(
    db: &PgPool,
    lane: Lane,
    conn: &mut Option<PoolConnection<Postgres>>,
    rows: &[&BookRow],
) -> Result<Option<Vec<Option<Booked>>>, sqlx::Error> {
    let c = match conn {
        Some(c) => c,
        None => conn.insert(db.acquire().await?),
    };
    let written = match lane {
        Lane::Whole => book(c, rows).await.map(Some),
        Lane::Preempting => book_preempting(c, rows).await,
    };
    if written.is_err() {
        *conn = None;
    }
    written
}

/// Up to [`GROUP`] waiting rows, first come first taken, leaving a row whose pool and
/// window overlap one already taken (and rows whose request stopped waiting are dropped
/// unbooked: nobody would hear the answer).
fn take_group(waiting: &mut VecDeque<Job>) -> Vec<Job> {
    let mut taken: Vec<Job> = Vec::new();
    let mut left = VecDeque::new();
    while let Some(job) = waiting.pop_front() {
        if taken.len() == GROUP {
            left.push_back(job);
            continue;
        }
        if job.answer.is_closed() {
            continue;
        }
        let clashes = taken.iter().any(|t| {
            t.row.pool_id == job.row.pool_id
                && t.row.start < job.row.end
                && job.row.start < t.row.end
        });
        if clashes {
            left.push_back(job);
        } else {
            taken.push(job);
        }
    }
    *waiting = left;
    taken
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};
    use std::time::Duration as StdDuration;

    /// Workers that panic while rows wait start their replacement, which answers them; before,
    /// the rows waited for the next booking to arrive and start a worker.
    #[tokio::test]
    async fn rows_waiting_when_a_worker_panics_are_answered() {
        // A database that refuses every connection: the replacement's answer is that error.
        let db = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(StdDuration::from_millis(200))
            .connect_lazy("postgres://nobody@127.0.0.1:1/nothing")
            .unwrap();
        let key = pool_key(&db, Lane::Whole);
        let start = Utc::now();
        let (answer, answered) = oneshot::channel();
        {
            // As join leaves it when every worker is busy: the row queued, no worker started.
            let mut queues = lock();
            let queue = queues.entry(key).or_default();
            queue.workers = WORKERS;
            let row = BookRow::for_pool(7, start, start + Duration::hours(4));
            queue.waiting.push_back(Job { row, answer });
        }
        // Every busy worker panics (the same bug met by each), before taking the row.
        let dying: Vec<_> = (0..WORKERS)
            .map(|_| {
                let db = db.clone();
                tokio::spawn(async move {
                    let _slot = Slot {
                        key,
                        db,
                        done: false,
                    };
                    panic!("a bug in a worker");
                })
            })
            .collect();
        for d in dying {
            assert!(d.await.unwrap_err().is_panic());
        }
        let got = tokio::time::timeout(StdDuration::from_secs(10), answered)
            .await
            .expect("the waiting row is answered, not left waiting")
            .expect("by a worker, not dropped");
        assert!(matches!(got, Err(Failed::Own(_))));
        // The replacement leaves once the queue is empty (just after answering).
        let mut left = false;
        for _ in 0..100 {
            left = !lock().contains_key(&key);
            if left {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
        assert!(left, "the replacement left when the queue emptied");
    }
}
