//! The event scheduler: a monotone priority queue of timed events.
//!
//! [`Scheduler<E>`] holds pending events of any payload type `E`, each at a
//! [`SimTime`], and hands them back in order. It owns the simulation clock:
//! [`Scheduler::now`] is the time of the last event popped, and events may only
//! be scheduled at or after it, so simulated time never goes backwards.
//!
//! # Ordering contract
//!
//! Events pop in increasing order of the key *(time, insertion sequence)*:
//!
//! * an earlier time always runs first;
//! * events at the **same time run in the order they were scheduled** (FIFO),
//!   exactly, including events scheduled at `now` while other events at `now`
//!   are still pending (they run after those);
//! * cancelling an event removes it and does not change the relative order of
//!   any other event.
//!
//! The order depends only on the sequence of calls, never on the internal
//! layout, memory addresses or hashing, so a run is reproducible bit for bit.
//! Every event gets an [`EventId`] that is its insertion sequence number
//! (0, 1, 2, ... per scheduler), usable to [`cancel`](Scheduler::cancel) it.
//!
//! # Structure
//!
//! Because every insertion has `time >= now` and `now` is the last popped time,
//! the keys form a *monotone* priority queue, which a radix heap exploits. Keys
//! are the 64-bit time in nanoseconds. Besides a FIFO `front` of the events at
//! exactly `last` (the time of the last extracted minimum), bucket `i` holds the
//! events whose time differs from `last` first in bit `i` (counted from the top,
//! i.e. `i = 63 - leading_zeros(time ^ last)`). Inserting is an XOR, a
//! leading-zero count and a `Vec::push`. When `front` runs dry, the lowest
//! non-empty bucket is scanned for its minimum, `last` moves there, and the
//! bucket's events are redistributed into strictly lower buckets or `front`;
//! each event moves at most 64 times in its life and usually only a few times.
//! Events live inline in the buckets (no per-event allocation; the bucket
//! vectors keep their capacity). Equal times always share a bucket and every
//! move preserves their relative order, so FIFO among equal times falls out of
//! the structure: no sequence number is compared anywhere.
//!
//! Cancellation and [`is_pending`](Scheduler::is_pending) use a bitset over
//! sequence numbers ("no longer pending": popped or cancelled) covering a
//! sliding window that starts at the oldest pending event. Fully-set words at
//! the start are dropped as the run advances; if one long-lived event would pin
//! the window while millions of others pass, the window's old part is folded
//! into a small ordered set of the few still-pending sequence numbers, so memory
//! stays proportional to the number of pending events. A cancelled event stays
//! in its bucket as a tombstone and is skipped (and dropped) when reached;
//! when tombstones outnumber live events they are swept out, so they are
//! bounded too.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;

use crate::time::{SimDuration, SimTime};

/// Identity of a scheduled event: its insertion sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(u64);

impl EventId {
    /// The insertion sequence number (0 for the first event scheduled).
    pub const fn seq(self) -> u64 {
        self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Bounds on a run, checked by [`Scheduler::step`] and [`Scheduler::run_until`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most events a run may process (a guard against runaway feedback).
    pub max_events: u64,
    /// The latest simulated time an event may run at.
    pub max_time: SimTime,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_events: 100_000_000,
            max_time: SimTime::MAX,
        }
    }
}

/// A [`Limits`] bound was reached; the next event was left pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// Processing the next event would exceed `max_events`.
    #[error(
        "event limit reached: {limit} events processed (at simulated time {at}); \
         raise it with --max-events"
    )]
    EventLimit { limit: u64, at: SimTime },
    /// The next event is later than `max_time`.
    #[error(
        "time limit reached: next event at {next_event_at} is past the limit {limit}; \
         raise it with --until"
    )]
    TimeLimit {
        limit: SimTime,
        next_event_at: SimTime,
    },
}

/// How [`Scheduler::run_until`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// No event is pending: the simulation has nothing left to do.
    Idle,
    /// Every event up to the requested time has run; later events are pending.
    ReachedTime,
}

/// One queued event (possibly a tombstone, if its sequence number is done).
struct Entry<E> {
    time: u64,
    seq: u64,
    ev: E,
}

/// Which sequence numbers are no longer pending (popped or cancelled).
///
/// `words[i]` covers sequence numbers `base + 64 * i ..+ 64`; a set bit means
/// done. `words[..head]` are all done (or folded) and wait to be dropped.
/// Below `floor = base + 64 * head` everything is done except the sequence
/// numbers in `stragglers`.
struct DoneSet {
    words: Vec<u64>,
    base: u64,
    head: usize,
    floor: u64,
    stragglers: BTreeSet<u64>,
}

// The thresholds are tiny under test so that the property test exercises
// trimming, folding and sweeping, not just the common path.

/// Drop the all-done prefix once it is this many words and at least half the vector.
const TRIM_WORDS: usize = if cfg!(test) { 1 } else { 1024 };
/// Fold the window's old half into `stragglers` once it spans more than
/// `FOLD_BITS_PER_EVENT * entries + FOLD_MIN_BITS` sequence numbers.
const FOLD_BITS_PER_EVENT: usize = if cfg!(test) { 2 } else { 16 };
const FOLD_MIN_BITS: usize = if cfg!(test) { 128 } else { 1 << 16 };
/// Sweep tombstones once there are more than this many and more than live events.
const SWEEP_MIN: usize = if cfg!(test) { 8 } else { 1024 };

impl DoneSet {
    fn new() -> Self {
        DoneSet {
            words: Vec::new(),
            base: 0,
            head: 0,
            floor: 0,
            stragglers: BTreeSet::new(),
        }
    }

    /// Register the next sequence number (called with 0, 1, 2, ...).
    #[inline]
    fn alloc(&mut self, seq: u64, entries: usize) {
        if seq.is_multiple_of(64) {
            self.words.push(0);
            let window_bits = (self.words.len() - self.head) * 64;
            if window_bits > FOLD_BITS_PER_EVENT * entries + FOLD_MIN_BITS {
                self.fold_old_half();
            }
        }
    }

    /// Move the pending sequence numbers of the window's older half into
    /// `stragglers` and drop that half: one old event must not pin the window.
    #[cold]
    fn fold_old_half(&mut self) {
        let window = self.words.len() - self.head;
        let end = self.head + window / 2;
        for i in self.head..end {
            let mut pending = !self.words[i];
            while pending != 0 {
                let bit = pending.trailing_zeros() as u64;
                self.stragglers.insert(self.base + 64 * i as u64 + bit);
                pending &= pending - 1;
            }
        }
        self.head = end;
        self.advance();
    }

    /// Skip fully-done words at the start; drop them when worthwhile.
    #[inline]
    fn advance(&mut self) {
        while self.head < self.words.len() && self.words[self.head] == u64::MAX {
            self.head += 1;
        }
        if self.head >= TRIM_WORDS && self.head * 2 >= self.words.len() {
            self.words.drain(..self.head);
            self.base += 64 * self.head as u64;
            self.head = 0;
        }
        self.floor = self.base + 64 * self.head as u64;
    }

    /// Is `seq` (already allocated) still pending?
    #[inline]
    fn is_pending(&self, seq: u64) -> bool {
        if seq < self.floor {
            return self.stragglers.contains(&seq);
        }
        let off = seq - self.base;
        (self.words[(off / 64) as usize] >> (off % 64)) & 1 == 0
    }

    /// Mark `seq` (already allocated) done; true if it was pending.
    #[inline]
    fn take(&mut self, seq: u64) -> bool {
        if seq < self.floor {
            return self.stragglers.remove(&seq);
        }
        let off = seq - self.base;
        let idx = (off / 64) as usize;
        let bit = 1u64 << (off % 64);
        let w = self.words[idx];
        if w & bit != 0 {
            return false;
        }
        self.words[idx] = w | bit;
        if idx == self.head && w | bit == u64::MAX {
            self.advance();
        }
        true
    }
}

/// What [`Scheduler::refill`] found.
enum Refill<E> {
    /// Nothing is left.
    Empty,
    /// `front` now holds the next events.
    Front,
    /// The next entry, taken directly (it was alone in its bucket).
    Lone(Entry<E>),
}

#[cold]
#[inline(never)]
#[track_caller]
fn scheduled_in_the_past(at: SimTime, now: SimTime) -> ! {
    panic!(
        "scheduling an event at {at}, before the current simulated time {now}: \
         time never goes backwards (schedule at now or later)"
    )
}

/// A deterministic discrete-event scheduler; see the [module docs](self).
pub struct Scheduler<E> {
    /// Events at exactly `last`, in insertion order.
    front: VecDeque<Entry<E>>,
    /// `buckets[i]`: events whose time first differs from `last` in bit `i`.
    buckets: Vec<Vec<Entry<E>>>,
    /// Bit `i` set iff `buckets[i]` is non-empty.
    mask: u64,
    /// The radix heap's reference key: the last extracted minimum (<= `now`).
    last: u64,
    /// The minimum live time over `buckets`, when known (saves a scan).
    bucket_min: Option<u64>,
    /// Entries stored (live events plus tombstones).
    entries: usize,
    /// Live (pending, not cancelled) events.
    live: usize,
    done: DoneSet,
    next_seq: u64,
    now: SimTime,
    processed: u64,
    limits: Limits,
}

impl<E> Default for Scheduler<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> fmt::Debug for Scheduler<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("now", &self.now)
            .field("pending", &self.live)
            .field("events_processed", &self.processed)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl<E> Scheduler<E> {
    /// An empty scheduler at time 0 with default [`Limits`].
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// An empty scheduler at time 0 with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        Scheduler {
            front: VecDeque::new(),
            buckets: (0..64).map(|_| Vec::new()).collect(),
            mask: 0,
            last: 0,
            bucket_min: None,
            entries: 0,
            live: 0,
            done: DoneSet::new(),
            next_seq: 0,
            now: SimTime::ZERO,
            processed: 0,
            limits,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The time of the last event popped (0 before the first), or the time a
    /// [`run_until`](Self::run_until) advanced to.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Events popped so far (by [`pop`](Self::pop), [`step`](Self::step) or
    /// [`run_until`](Self::run_until)); cancelled events do not count.
    pub fn events_processed(&self) -> u64 {
        self.processed
    }

    /// Pending events, not counting cancelled ones.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Schedule `ev` at `at`.
    ///
    /// # Panics
    /// If `at` is earlier than [`now`](Self::now): simulated time never goes
    /// backwards. (One predictable comparison; checked in release builds too,
    /// because the queue's order relies on it.)
    #[inline]
    #[track_caller]
    pub fn schedule_at(&mut self, at: SimTime, ev: E) -> EventId {
        if at < self.now {
            scheduled_in_the_past(at, self.now);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.done.alloc(seq, self.entries);
        let time = at.as_nanos();
        debug_assert!(time >= self.last, "radix heap invariant: last <= now");
        self.entries += 1;
        self.live += 1;
        let x = time ^ self.last;
        if x == 0 {
            self.front.push_back(Entry { time, seq, ev });
        } else {
            let i = 63 - x.leading_zeros() as usize;
            self.buckets[i].push(Entry { time, seq, ev });
            self.mask |= 1 << i;
            if let Some(m) = self.bucket_min
                && time < m
            {
                self.bucket_min = Some(time);
            }
        }
        EventId(seq)
    }

    /// Schedule `ev` after `d` from [`now`](Self::now).
    #[inline]
    #[track_caller]
    pub fn schedule_in(&mut self, d: SimDuration, ev: E) -> EventId {
        self.schedule_at(self.now + d, ev)
    }

    /// Cancel a pending event. True if it was pending (it will never be
    /// returned); false if it already ran, was already cancelled, or is not an
    /// id of this scheduler. Amortised O(1).
    pub fn cancel(&mut self, id: EventId) -> bool {
        if id.0 >= self.next_seq || !self.done.take(id.0) {
            return false;
        }
        self.live -= 1;
        self.bucket_min = None;
        let dead = self.entries - self.live;
        if dead > SWEEP_MIN && dead > self.live {
            self.sweep();
        }
        true
    }

    /// Is this event still pending (scheduled, not yet run, not cancelled)?
    pub fn is_pending(&self, id: EventId) -> bool {
        id.0 < self.next_seq && self.done.is_pending(id.0)
    }

    /// The time of the next live event, if any. O(1) normally; after a
    /// cancellation it may scan one bucket ([`step`](Self::step) and
    /// [`run_until`](Self::run_until) cache that scan).
    pub fn peek_time(&self) -> Option<SimTime> {
        if self.live == 0 {
            return None;
        }
        if self.front.iter().any(|e| self.done.is_pending(e.seq)) {
            return Some(SimTime::from_nanos(self.last));
        }
        if let Some(m) = self.bucket_min {
            return Some(SimTime::from_nanos(m));
        }
        let mut mask = self.mask;
        while mask != 0 {
            let k = mask.trailing_zeros() as usize;
            if let Some(m) = self.bucket_live_min(k) {
                return Some(SimTime::from_nanos(m));
            }
            mask &= mask - 1;
        }
        None
    }

    /// Pop the next event regardless of [`Limits`], advancing `now` to its
    /// time. Counts towards [`events_processed`](Self::events_processed).
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, EventId, E)> {
        loop {
            let e = match self.front.pop_front() {
                Some(e) => e,
                None => match self.refill() {
                    Refill::Lone(e) => e,
                    Refill::Front => continue,
                    Refill::Empty => return None,
                },
            };
            self.entries -= 1;
            if self.done.take(e.seq) {
                self.live -= 1;
                self.processed += 1;
                self.now = SimTime::from_nanos(e.time);
                return Some((self.now, EventId(e.seq), e.ev));
            }
        }
    }

    /// Pop the next event if the [`Limits`] allow it: `Ok(None)` when nothing is
    /// pending, `Err` (leaving the event pending) if it is later than
    /// `max_time` or would be event number `max_events + 1`.
    #[inline]
    pub fn step(&mut self) -> Result<Option<(SimTime, EventId, E)>, LimitError> {
        let Some(next) = self.next_time() else {
            return Ok(None);
        };
        self.check_limits(next)?;
        Ok(self.pop())
    }

    /// Run every event with time <= `until` through `handler` (which may
    /// schedule or cancel more), honouring [`Limits`].
    ///
    /// Events at exactly `until` run. If events remain (all later than
    /// `until`), `now` advances to `until`, so a later `run_until` or
    /// [`schedule_in`](Self::schedule_in) continues from there, and the result
    /// is [`RunEnd::ReachedTime`]. If the queue empties, `now` stays at the last
    /// event's time and the result is [`RunEnd::Idle`].
    pub fn run_until<F>(&mut self, until: SimTime, mut handler: F) -> Result<RunEnd, LimitError>
    where
        F: FnMut(&mut Scheduler<E>, SimTime, EventId, E),
    {
        let until_ns = until.as_nanos();
        loop {
            let Some(next) = self.next_time() else {
                return Ok(RunEnd::Idle);
            };
            if next > until_ns {
                if until > self.now {
                    self.now = until;
                }
                return Ok(RunEnd::ReachedTime);
            }
            self.check_limits(next)?;
            let (t, id, ev) = self.pop().expect("a live event was just found");
            handler(self, t, id, ev);
        }
    }

    /// Counts one more event as processed, without popping one, when
    /// [`Limits::max_events`] allows it (as [`step`](Self::step) would): for
    /// a handler that does in one event the work of several (a batch of
    /// commands, each an event of its own when written as lines).
    pub fn count_event(&mut self) -> Result<(), LimitError> {
        if self.processed >= self.limits.max_events {
            return Err(LimitError::EventLimit {
                limit: self.limits.max_events,
                at: self.now,
            });
        }
        self.processed += 1;
        Ok(())
    }

    #[inline]
    fn check_limits(&self, next: u64) -> Result<(), LimitError> {
        if next > self.limits.max_time.as_nanos() {
            return Err(LimitError::TimeLimit {
                limit: self.limits.max_time,
                next_event_at: SimTime::from_nanos(next),
            });
        }
        if self.processed >= self.limits.max_events {
            return Err(LimitError::EventLimit {
                limit: self.limits.max_events,
                at: self.now,
            });
        }
        Ok(())
    }

    /// The next live event's time, dropping tombstones at the front and caching
    /// the bucket scan for the following [`pop`](Self::pop).
    #[inline]
    fn next_time(&mut self) -> Option<u64> {
        if self.live == 0 {
            return None;
        }
        if self.entries != self.live {
            while let Some(e) = self.front.front() {
                if self.done.is_pending(e.seq) {
                    break;
                }
                self.front.pop_front();
                self.entries -= 1;
            }
        }
        if !self.front.is_empty() {
            return Some(self.last);
        }
        if self.bucket_min.is_none() {
            while self.mask != 0 {
                let k = self.mask.trailing_zeros() as usize;
                if let Some(m) = self.bucket_live_min(k) {
                    self.bucket_min = Some(m);
                    break;
                }
                self.drop_bucket(k);
            }
        }
        self.bucket_min
    }

    /// The minimum time of the live events in bucket `k`.
    #[inline]
    fn bucket_live_min(&self, k: usize) -> Option<u64> {
        let b = &self.buckets[k];
        if self.entries == self.live {
            b.iter().map(|e| e.time).min()
        } else {
            b.iter()
                .filter(|e| self.done.is_pending(e.seq))
                .map(|e| e.time)
                .min()
        }
    }

    /// Discard bucket `k`, which holds only tombstones.
    #[cold]
    fn drop_bucket(&mut self, k: usize) {
        self.entries -= self.buckets[k].len();
        self.buckets[k].clear();
        self.mask &= !(1 << k);
    }

    /// `front` is empty: move `last` to the minimum of the lowest non-empty
    /// bucket and redistribute that bucket.
    #[inline]
    fn refill(&mut self) -> Refill<E> {
        debug_assert!(self.front.is_empty());
        let min = loop {
            if self.mask == 0 {
                debug_assert_eq!(self.live, 0);
                debug_assert_eq!(self.entries, 0);
                self.bucket_min = None;
                return Refill::Empty;
            }
            let k = self.mask.trailing_zeros() as usize;
            if self.buckets[k].len() == 1 {
                // Common when events are sparse: a lone live entry is the
                // minimum. A tombstone is dropped instead: it must not become
                // `last`, which may only be a time that is about to be popped.
                let e = self.buckets[k].pop().expect("length 1");
                self.mask &= !(1 << k);
                if self.entries == self.live || self.done.is_pending(e.seq) {
                    self.bucket_min = None;
                    self.last = e.time;
                    return Refill::Lone(e);
                }
                debug_assert!(self.bucket_min.is_none());
                self.entries -= 1;
                continue;
            }
            if let Some(m) = self.bucket_min.take() {
                break m;
            }
            if let Some(m) = self.bucket_live_min(k) {
                break m;
            }
            self.drop_bucket(k);
        };
        let k = self.mask.trailing_zeros() as usize;
        self.mask &= !(1 << k);
        self.last = min;
        let mut src = std::mem::take(&mut self.buckets[k]);
        let sweep = self.entries != self.live;
        for e in src.drain(..) {
            if sweep && !self.done.is_pending(e.seq) {
                self.entries -= 1;
                continue;
            }
            let x = e.time ^ min;
            if x == 0 {
                self.front.push_back(e);
            } else {
                // Every entry of bucket k agrees with `min` above bit k, so it
                // lands strictly lower.
                let i = 63 - x.leading_zeros() as usize;
                debug_assert!(i < k);
                self.buckets[i].push(e);
                self.mask |= 1 << i;
            }
        }
        self.buckets[k] = src;
        Refill::Front
    }

    /// Remove every tombstone, keeping the order of everything else.
    #[cold]
    fn sweep(&mut self) {
        let done = &self.done;
        self.front.retain(|e| done.is_pending(e.seq));
        let mut mask = self.mask;
        while mask != 0 {
            let k = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            self.buckets[k].retain(|e| done.is_pending(e.seq));
            if self.buckets[k].is_empty() {
                self.mask &= !(1 << k);
            }
        }
        self.entries = self.live;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn t(ns: u64) -> SimTime {
        SimTime::from_nanos(ns)
    }

    fn drain<E>(s: &mut Scheduler<E>) -> Vec<(u64, u64, E)> {
        std::iter::from_fn(|| s.pop().map(|(t, id, e)| (t.as_nanos(), id.seq(), e))).collect()
    }

    #[test]
    fn equal_times_pop_fifo() {
        let mut s = Scheduler::new();
        for i in 0..10u32 {
            s.schedule_at(t(5), i);
        }
        s.schedule_at(t(3), 100);
        s.schedule_at(t(5), 10);
        let order: Vec<u32> = drain(&mut s).into_iter().map(|(_, _, e)| e).collect();
        assert_eq!(order, vec![100, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    }

    #[test]
    fn events_scheduled_at_now_run_after_pending_ones_at_now() {
        let mut s = Scheduler::new();
        s.schedule_at(t(7), "a");
        s.schedule_at(t(7), "b");
        s.schedule_at(t(9), "z");
        assert_eq!(s.pop().unwrap().2, "a");
        s.schedule_in(SimDuration::ZERO, "c");
        s.schedule_at(t(8), "d");
        let order: Vec<&str> = drain(&mut s).into_iter().map(|(_, _, e)| e).collect();
        assert_eq!(order, vec!["b", "c", "d", "z"]);
        assert_eq!(s.now(), t(9));
    }

    #[test]
    fn cancel_semantics() {
        let mut s = Scheduler::new();
        let a = s.schedule_at(t(1), 'a');
        let b = s.schedule_at(t(2), 'b');
        let c = s.schedule_at(t(2), 'c');
        assert_eq!((a.seq(), b.seq(), c.seq()), (0, 1, 2));
        assert!(s.is_pending(b));
        assert!(s.cancel(b));
        assert!(!s.is_pending(b));
        assert!(!s.cancel(b), "second cancel of the same id");
        assert_eq!(s.len(), 2);
        assert_eq!(s.pop().map(|p| p.2), Some('a'));
        assert!(!s.cancel(a), "cancel of a popped id");
        assert!(!s.is_pending(a));
        assert!(!s.cancel(EventId(99)), "cancel of an unknown id");
        assert!(!s.is_pending(EventId(99)));
        assert_eq!(s.peek_time(), Some(t(2)));
        assert_eq!(s.pop().map(|p| p.2), Some('c'));
        assert_eq!(s.pop().map(|p| p.2), None);
        assert!(s.is_empty());
        assert_eq!(s.events_processed(), 2);
    }

    #[test]
    fn cancelling_the_next_event_updates_peek() {
        let mut s = Scheduler::new();
        let a = s.schedule_at(t(10), ());
        s.schedule_at(t(20), ());
        assert_eq!(s.peek_time(), Some(t(10)));
        s.cancel(a);
        assert_eq!(s.peek_time(), Some(t(20)));
        assert_eq!(s.step().unwrap().map(|p| p.0), Some(t(20)));
        assert_eq!(s.peek_time(), None);
    }

    #[test]
    #[should_panic(expected = "time never goes backwards")]
    fn scheduling_in_the_past_panics() {
        let mut s = Scheduler::new();
        s.schedule_at(t(10), ());
        s.pop();
        s.schedule_at(t(9), ());
    }

    #[test]
    fn time_limit() {
        let mut s = Scheduler::with_limits(Limits {
            max_time: "2s".parse().unwrap(),
            ..Limits::default()
        });
        s.schedule_at("1s".parse().unwrap(), 1);
        s.schedule_at("2s".parse().unwrap(), 2);
        s.schedule_at("3s".parse().unwrap(), 3);
        assert_eq!(s.step().unwrap().unwrap().2, 1);
        assert_eq!(
            s.step().unwrap().unwrap().2,
            2,
            "an event exactly at max_time runs"
        );
        let err = s.step().unwrap_err();
        assert_eq!(
            err,
            LimitError::TimeLimit {
                limit: t(2_000_000_000),
                next_event_at: t(3_000_000_000)
            }
        );
        assert_eq!(
            err.to_string(),
            "time limit reached: next event at 3s is past the limit 2s; raise it with --until"
        );
        assert_eq!(s.len(), 1, "the event stays pending");
        assert_eq!(s.now(), t(2_000_000_000));
        s.set_limits(Limits::default());
        assert_eq!(s.step().unwrap().unwrap().2, 3);
        assert_eq!(s.step().unwrap(), None);
    }

    #[test]
    fn event_limit() {
        let mut s = Scheduler::with_limits(Limits {
            max_events: 2,
            ..Limits::default()
        });
        assert_eq!(s.limits().max_events, 2);
        for i in 0..3 {
            s.schedule_at(t(500_000_000 + i * 500_000_000), i);
        }
        assert!(s.step().unwrap().is_some());
        assert!(s.step().unwrap().is_some());
        let err = s.step().unwrap_err();
        assert_eq!(
            err,
            LimitError::EventLimit {
                limit: 2,
                at: t(1_000_000_000)
            }
        );
        assert_eq!(
            err.to_string(),
            "event limit reached: 2 events processed (at simulated time 1s); \
             raise it with --max-events"
        );
        assert_eq!(s.events_processed(), 2);
        // The raw pop ignores limits.
        assert_eq!(s.pop().map(|p| p.2), Some(2));
        // An empty queue is not an error.
        assert_eq!(s.step().unwrap(), None);

        let mut s = Scheduler::with_limits(Limits {
            max_events: 100_000_000,
            ..Limits::default()
        });
        s.processed = 100_000_000;
        s.now = t(1_500_000_000);
        s.schedule_in(SimDuration::from_secs(1), ());
        assert_eq!(
            s.step().unwrap_err().to_string(),
            "event limit reached: 100000000 events processed (at simulated time 1.5s); \
             raise it with --max-events"
        );
    }

    #[test]
    fn run_until_semantics() {
        let mut s = Scheduler::new();
        s.schedule_at(t(10), 0u32);
        let mut seen = Vec::new();
        // Each event schedules a follow-up 10ns later, up to 5 generations.
        let mut handler = |s: &mut Scheduler<u32>, at: SimTime, _id: EventId, g: u32| {
            seen.push((at.as_nanos(), g));
            if g < 5 {
                s.schedule_in(SimDuration::from_nanos(10), g + 1);
            }
        };
        assert_eq!(s.run_until(t(30), &mut handler), Ok(RunEnd::ReachedTime));
        assert_eq!(s.now(), t(30), "now advances to until");
        assert_eq!(s.peek_time(), Some(t(40)));
        // Scheduling relative to the new now works.
        s.schedule_in(SimDuration::from_nanos(5), 100);
        assert_eq!(
            s.run_until(t(30), &mut handler),
            Ok(RunEnd::ReachedTime),
            "no-op"
        );
        assert_eq!(s.run_until(t(1000), &mut handler), Ok(RunEnd::Idle));
        assert_eq!(s.now(), t(60), "idle: now stays at the last event");
        assert_eq!(
            seen,
            vec![
                (10, 0),
                (20, 1),
                (30, 2),
                (35, 100),
                (40, 3),
                (50, 4),
                (60, 5)
            ],
            "the event at exactly 30 ran in the first call"
        );
    }

    #[test]
    fn run_until_honours_limits() {
        let mut s = Scheduler::with_limits(Limits {
            max_time: t(15),
            ..Limits::default()
        });
        s.schedule_at(t(10), ());
        s.schedule_at(t(20), ());
        let r = s.run_until(t(100), |_, _, _, _| {});
        assert_eq!(
            r,
            Err(LimitError::TimeLimit {
                limit: t(15),
                next_event_at: t(20)
            })
        );
        assert_eq!(s.now(), t(10));
        let mut s = Scheduler::with_limits(Limits {
            max_events: 3,
            ..Limits::default()
        });
        s.schedule_at(t(0), ());
        let r = s.run_until(t(100), |s, _, _, _| {
            s.schedule_in(SimDuration::from_nanos(1), ());
        });
        assert_eq!(r, Err(LimitError::EventLimit { limit: 3, at: t(2) }));
    }

    #[test]
    fn long_lived_event_does_not_pin_memory() {
        let mut s = Scheduler::new();
        let far = s.schedule_at(t(u64::MAX), 0u64);
        let far2 = s.schedule_at(t(u64::MAX - 1), 0u64);
        s.schedule_at(t(1), 1);
        for _ in 0..2_000_000u64 {
            let (at, _, v) = s.pop().unwrap();
            s.schedule_at(at + SimDuration::from_nanos(1 + v % 7), v + 1);
        }
        assert!(
            s.done.words.len() < 64,
            "window words {}",
            s.done.words.len()
        );
        assert_eq!(s.done.stragglers.len(), 2);
        assert!(s.is_pending(far) && s.is_pending(far2));
        assert!(s.cancel(far2));
        assert!(!s.is_pending(far2));
        assert_eq!(s.len(), 2);
        assert_eq!(s.pop().unwrap().2, 2_000_001);
        assert_eq!(s.pop().unwrap().1, far);
        assert_eq!(s.pop(), None);
    }

    #[test]
    fn tombstones_are_swept() {
        let mut s = Scheduler::new();
        s.schedule_at(t(1), ());
        for round in 0..100u64 {
            let ids: Vec<EventId> = (0..1000)
                .map(|i| s.schedule_at(t(1_000_000 + round * 1000 + i), ()))
                .collect();
            for id in ids {
                assert!(s.cancel(id));
            }
        }
        assert!(s.entries <= 2 * SWEEP_MIN + 2, "entries {}", s.entries);
        assert_eq!(s.len(), 1);
        assert_eq!(drain(&mut s).len(), 1);
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// Schedule at now + delta (small deltas collide a lot).
        Schedule(u64),
        /// Cancel the pending event with this index (mod the pending count),
        /// or an already finished id when nothing is pending.
        Cancel(usize),
        Pop,
        /// Peek at the next time (both the `&self` and the stepping path).
        Peek,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => prop_oneof![
                Just(0u64),
                0u64..4,
                0u64..1000,
                any::<u32>().prop_map(u64::from),
                (0u32..62).prop_map(|b| 1u64 << b),
            ]
            .prop_map(Op::Schedule),
            1 => any::<usize>().prop_map(Op::Cancel),
            3 => Just(Op::Pop),
            1 => Just(Op::Peek),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
        #[test]
        fn matches_reference_model(ops in proptest::collection::vec(op(), 0..600)) {
            let mut s: Scheduler<u64> = Scheduler::new();
            let mut model: BTreeMap<(u64, u64), u64> = BTreeMap::new();
            let mut time_of: BTreeMap<u64, u64> = BTreeMap::new();
            let mut finished: Vec<u64> = Vec::new();
            let mut now = 0u64;
            for (n, op) in ops.into_iter().enumerate() {
                let payload = n as u64 * 31 + 7;
                match op {
                    Op::Schedule(d) => {
                        let at = now + d;
                        let id = s.schedule_at(t(at), payload);
                        prop_assert!(model.insert((at, id.seq()), payload).is_none());
                        time_of.insert(id.seq(), at);
                    }
                    Op::Cancel(k) => {
                        if model.is_empty() {
                            if let Some(&seq) = finished.get(k % finished.len().max(1)) {
                                prop_assert!(!s.cancel(EventId(seq)));
                            }
                            prop_assert!(!s.cancel(EventId(u64::MAX)));
                        } else {
                            let &(at, seq) = model.keys().nth(k % model.len()).unwrap();
                            prop_assert!(s.is_pending(EventId(seq)));
                            prop_assert!(s.cancel(EventId(seq)));
                            prop_assert!(!s.is_pending(EventId(seq)));
                            model.remove(&(at, seq));
                            finished.push(seq);
                        }
                    }
                    Op::Pop => {
                        let want = model.pop_first();
                        let got = s.pop();
                        match (want, got) {
                            (None, None) => {}
                            (Some(((at, seq), e)), Some((gt, gid, ge))) => {
                                prop_assert_eq!((at, seq, e), (gt.as_nanos(), gid.seq(), ge));
                                now = at;
                                finished.push(seq);
                            }
                            (w, g) => prop_assert!(false, "model {:?} vs scheduler {:?}", w, g),
                        }
                    }
                    Op::Peek => {
                        let want = model.keys().next().map(|&(at, _)| t(at));
                        prop_assert_eq!(s.peek_time(), want);
                        prop_assert_eq!(s.next_time().map(t), want);
                    }
                }
                prop_assert_eq!(s.len(), model.len());
                prop_assert_eq!(s.now(), t(now));
            }
            for &(at, seq) in model.keys() {
                prop_assert!(s.is_pending(EventId(seq)));
                prop_assert_eq!(time_of[&seq], at);
            }
            let rest: Vec<(u64, u64, u64)> = model.into_iter().map(|((a, q), e)| (a, q, e)).collect();
            prop_assert_eq!(drain(&mut s), rest);
        }
    }
}
