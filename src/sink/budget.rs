//! The memory all requests in flight may hold at once.
//!
//! Each request takes a [`Reservation`] and grows it before it holds more:
//! body bytes as they arrive, decompressed bytes as they are produced, and the
//! scanner's bound of the decoded request before decoding. What a request can
//! never fit (more than the whole budget) is refused for good; what does not
//! fit now waits a little (the body read pauses, so TCP pushes back on the
//! sender) and is then refused as retryable.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes per permit: the semaphore counts KiB so that its permits fit a `u32`.
const UNIT: usize = 1024;

/// Why a reservation could not grow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BudgetError {
    /// More than the whole budget: this request can never be served.
    NeverFits(String),
    /// Not available now: retry later.
    Busy(String),
}

/// A shared budget of bytes, in KiB permits.
#[derive(Clone, Debug)]
pub struct Budget {
    permits: Arc<Semaphore>,
    total_units: usize,
}

impl Budget {
    /// A budget of `bytes` (rounded down to whole KiB; at least one).
    pub fn new(bytes: usize) -> Self {
        let total_units = (bytes / UNIT)
            .clamp(1, Semaphore::MAX_PERMITS)
            .min(u32::MAX as usize);
        Budget {
            permits: Arc::new(Semaphore::new(total_units)),
            total_units,
        }
    }

    /// The whole budget, in bytes.
    pub fn total_bytes(&self) -> usize {
        self.total_units * UNIT
    }

    /// What is not reserved now, in bytes.
    pub fn available_bytes(&self) -> usize {
        self.permits.available_permits() * UNIT
    }

    /// An empty reservation; it gives back what it holds when dropped.
    pub fn reservation(&self) -> Reservation {
        Reservation {
            budget: self.clone(),
            permit: None,
            bytes: 0,
        }
    }
}

/// Part of a [`Budget`] held by one request.
#[derive(Debug)]
pub struct Reservation {
    budget: Budget,
    permit: Option<OwnedSemaphorePermit>,
    bytes: usize,
}

impl Reservation {
    /// Bytes reserved so far.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn held_units(&self) -> usize {
        self.permit.as_ref().map_or(0, |p| p.num_permits())
    }

    /// Permits still needed to hold `more` bytes on top of what is held.
    fn needed(&self, more: usize) -> Result<u32, BudgetError> {
        let want = self.bytes.saturating_add(more).div_ceil(UNIT);
        if want > self.budget.total_units {
            return Err(BudgetError::NeverFits(format!(
                "the request needs more than the sink's memory budget for requests in \
                 flight ({} bytes); send smaller batches",
                self.budget.total_bytes()
            )));
        }
        // total_units fits a u32, so does the difference.
        Ok((want - self.held_units().min(want)) as u32)
    }

    fn add(&mut self, more: usize, permit: Option<OwnedSemaphorePermit>) {
        self.bytes += more;
        match (&mut self.permit, permit) {
            (Some(held), Some(p)) => held.merge(p),
            (held @ None, p) => *held = p,
            (Some(_), None) => {}
        }
    }

    fn busy(&self) -> BudgetError {
        BudgetError::Busy(format!(
            "the sink is busy: requests in flight hold its memory budget of {} bytes; retry later",
            self.budget.total_bytes()
        ))
    }

    /// Grows by `more` bytes if the budget has them now.
    pub fn try_grow(&mut self, more: usize) -> Result<(), BudgetError> {
        let n = self.needed(more)?;
        let permit = match n {
            0 => None,
            n => Some(
                self.budget
                    .permits
                    .clone()
                    .try_acquire_many_owned(n)
                    .map_err(|_| self.busy())?,
            ),
        };
        self.add(more, permit);
        Ok(())
    }

    /// Grows by `more` bytes, waiting up to `wait` for them.
    pub async fn grow(&mut self, more: usize, wait: Duration) -> Result<(), BudgetError> {
        let n = self.needed(more)?;
        let permit = match n {
            0 => None,
            n => {
                let acquire = self.budget.permits.clone().acquire_many_owned(n);
                match tokio::time::timeout(wait, acquire).await {
                    Ok(Ok(p)) => Some(p),
                    // Timed out, or the semaphore was closed (never done).
                    _ => return Err(self.busy()),
                }
            }
        };
        self.add(more, permit);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_the_budget_and_give_it_back() {
        let budget = Budget::new(10 * UNIT);
        let mut a = budget.reservation();
        a.try_grow(3 * UNIT + 1).expect("fits");
        assert_eq!(budget.available_bytes(), 6 * UNIT);
        // Growing within the KiB already held takes nothing more.
        a.try_grow(UNIT - 1).expect("fits");
        assert_eq!(budget.available_bytes(), 6 * UNIT);
        let mut b = budget.reservation();
        b.try_grow(6 * UNIT).expect("the rest");
        assert!(matches!(b.try_grow(1), Err(BudgetError::Busy(_))));
        assert!(matches!(
            budget.reservation().try_grow(11 * UNIT),
            Err(BudgetError::NeverFits(_))
        ));
        drop(a);
        assert_eq!(budget.available_bytes(), 4 * UNIT);
        drop(b);
        assert_eq!(budget.available_bytes(), 10 * UNIT);
    }

    #[tokio::test]
    async fn growing_waits_for_room_then_gives_up() {
        let budget = Budget::new(4 * UNIT);
        let mut a = budget.reservation();
        a.try_grow(4 * UNIT).expect("all");
        let mut b = budget.reservation();
        let err = b.grow(UNIT, Duration::from_millis(20)).await;
        assert!(matches!(err, Err(BudgetError::Busy(_))), "{err:?}");
        let waiter = tokio::spawn(async move {
            b.grow(UNIT, Duration::from_secs(10))
                .await
                .map(|()| b.bytes())
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a);
        assert_eq!(waiter.await.expect("task"), Ok(UNIT));
    }
}
