//! Calls in flight: one per cache key, with every paused request that waits for its answer.
//!
//! Requests with the same token (and scope) share one call: the first one dispatches it and the
//! others join its flight. The answer is delivered by the SDK to the context that dispatched the
//! call (the caller); whoever receives it lands the flight and resolves every waiter, the caller
//! included. If the caller's stream ends first, the SDK drops the answer of its call (it routes
//! answers only to live contexts, docs/host-semantics.md §3 and §5): the flight is then
//! orphaned, and the root context calls again on its next tick for the waiters left.
//!
//! With `tokenServerRetries`, an answer that may be asked for again (`auth::retryable`) is not
//! landed: the receiver sends the call again ([`Flights::resend`]) while retries and time are
//! left, and the waiters wait for the final answer. `tokenServerTimeoutMs` is the budget of the
//! whole exchange ([`Retries::deadline_ms`]): each attempt gets what is left of it.

use crate::core::auth::Pending;
use crate::core::config::Config;
use std::collections::HashMap;
use std::rc::Rc;

/// A paused request waiting for a flight's answer.
pub struct Waiter {
    pub context_id: u32,
    pub config: Rc<Config>,
    pub pending: Pending,
}

/// The re-sends a flight may still make, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retries {
    /// Re-sends left.
    pub left: u8,
    /// The end of the exchange's budget, host clock in milliseconds.
    pub deadline_ms: u64,
}

/// One call and its waiters.
pub struct Flight {
    /// The call's token while it is out; `None` once orphaned, until the root calls again.
    token: Option<u32>,
    /// The context the answer is delivered to.
    caller: u32,
    /// `None`: one attempt (`tokenServerRetries` 0).
    pub retries: Option<Retries>,
    /// In arrival order; the first one's configuration and token make the call.
    pub waiters: Vec<Waiter>,
}

/// What a stream's end did to its flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// The flight goes on (or is gone): nothing to do.
    Nothing,
    /// The caller left with waiters behind: the root must call again.
    Orphaned,
}

/// Every flight of one VM. Keyed by what a client chooses (its token), so the maps hash with
/// std's `RandomState`: per-VM random keys, no hash flooding.
#[derive(Default)]
pub struct Flights {
    by_key: HashMap<String, Flight>,
    by_token: HashMap<u32, String>,
}

impl Flights {
    /// Adds `waiter` to the flight of `key`; gives it back if there is none.
    pub fn join(&mut self, key: &str, waiter: Waiter) -> Result<(), Waiter> {
        match self.by_key.get_mut(key) {
            Some(flight) => {
                flight.waiters.push(waiter);
                Ok(())
            }
            None => Err(waiter),
        }
    }

    /// A call `token` just dispatched by context `caller` for `waiter`.
    pub fn start(
        &mut self,
        key: String,
        token: u32,
        caller: u32,
        retries: Option<Retries>,
        waiter: Waiter,
    ) {
        self.by_token.insert(token, key.clone());
        self.by_key.insert(
            key,
            Flight {
                token: Some(token),
                caller,
                retries,
                waiters: vec![waiter],
            },
        );
    }

    /// A landed `flight` whose call was sent again as `token` (by the same caller: the SDK
    /// routes the new answer to the context that received the last one).
    pub fn resend(&mut self, key: String, token: u32, mut flight: Flight) {
        flight.token = Some(token);
        self.by_token.insert(token, key.clone());
        self.by_key.insert(key, flight);
    }

    /// The flight whose answer `token` is, taken out with its key; `None` for an unknown token
    /// (a flight whose waiters all left).
    pub fn land(&mut self, token: u32) -> Option<(String, Flight)> {
        let key = self.by_token.remove(&token)?;
        let flight = self.by_key.remove(&key)?;
        Some((key, flight))
    }

    /// Stream `context_id`, waiting in the flight of `key`, has ended.
    pub fn leave(&mut self, key: &str, context_id: u32) -> Left {
        let Some(flight) = self.by_key.get_mut(key) else {
            return Left::Nothing;
        };
        flight.waiters.retain(|w| w.context_id != context_id);
        let caller_left = flight.caller == context_id && flight.token.is_some();
        if caller_left {
            if let Some(token) = flight.token.take() {
                self.by_token.remove(&token);
            }
        }
        if flight.waiters.is_empty() {
            if let Some(token) = flight.token {
                self.by_token.remove(&token);
            }
            self.by_key.remove(key);
            return Left::Nothing;
        }
        if caller_left {
            Left::Orphaned
        } else {
            Left::Nothing
        }
    }

    /// The keys of orphaned flights (no call out, waiters left).
    pub fn orphans(&self) -> Vec<String> {
        let orphaned = self.by_key.iter().filter(|(_, f)| f.token.is_none());
        orphaned.map(|(key, _)| key.clone()).collect()
    }

    /// The first waiter of an orphaned flight: whose call the root makes again.
    pub fn first_waiter(&self, key: &str) -> Option<&Waiter> {
        let flight = self.by_key.get(key)?;
        flight
            .token
            .is_none()
            .then(|| flight.waiters.first())
            .flatten()
    }

    /// The root (context `caller`) called again for the orphaned flight of `key`: a new call
    /// for the requests left, with the retries and budget of a new exchange.
    pub fn restart(&mut self, key: &str, token: u32, caller: u32, retries: Option<Retries>) {
        if let Some(flight) = self.by_key.get_mut(key) {
            flight.token = Some(token);
            flight.caller = caller;
            flight.retries = retries;
            self.by_token.insert(token, key.to_string());
        }
    }

    /// Takes an orphaned flight out (the call could not be made again).
    pub fn abandon(&mut self, key: &str) -> Option<Flight> {
        self.by_key.remove(key)
    }

    /// Whether nothing is in flight (what a test of the VM's bookkeeping wants to see).
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty() && self.by_token.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiter(context_id: u32) -> Waiter {
        Waiter {
            context_id,
            config: Rc::new(Config::default()),
            pending: Pending::new("tok".into(), vec![], vec![], false),
        }
    }

    #[test]
    fn an_answer_lands_every_waiter_once() {
        let mut flights = Flights::default();
        assert!(flights.join("k", waiter(2)).is_err(), "no flight yet");
        flights.start("k".into(), 7, 2, None, waiter(2));
        assert!(flights.join("k", waiter(3)).is_ok());
        let (key, flight) = flights.land(7).unwrap();
        assert_eq!(key, "k");
        let ids: Vec<u32> = flight.waiters.iter().map(|w| w.context_id).collect();
        assert_eq!(ids, [2, 3]);
        assert!(flights.land(7).is_none(), "landed once");
        assert!(flights.is_empty());
    }

    #[test]
    fn a_caller_that_leaves_orphans_its_waiters_and_its_token() {
        let mut flights = Flights::default();
        flights.start("k".into(), 7, 2, None, waiter(2));
        flights.join("k", waiter(3)).ok().unwrap();
        assert_eq!(flights.leave("k", 2), Left::Orphaned);
        assert!(
            flights.land(7).is_none(),
            "the caller's answer is never delivered"
        );
        assert_eq!(flights.orphans(), ["k"]);
        assert_eq!(flights.first_waiter("k").unwrap().context_id, 3);
        flights.restart("k", 11, 1, None);
        assert!(flights.orphans().is_empty());
        let (_, flight) = flights.land(11).unwrap();
        assert_eq!(flight.waiters.len(), 1);
        assert!(flights.is_empty());
    }

    #[test]
    fn a_resent_call_keeps_its_waiters_under_the_new_token() {
        let mut flights = Flights::default();
        let retries = Some(Retries {
            left: 2,
            deadline_ms: 5_000,
        });
        flights.start("k".into(), 7, 2, retries, waiter(2));
        flights.join("k", waiter(3)).ok().unwrap();
        let (key, mut flight) = flights.land(7).unwrap();
        flight.retries = Some(Retries {
            left: 1,
            deadline_ms: 5_000,
        });
        flights.resend(key, 9, flight);
        assert!(
            flights.join("k", waiter(4)).is_ok(),
            "newcomers join the re-sent call"
        );
        assert!(flights.land(7).is_none());
        let (_, flight) = flights.land(9).unwrap();
        assert_eq!(flight.waiters.len(), 3);
        assert_eq!(flight.retries.unwrap().left, 1);
    }

    #[test]
    fn the_last_waiter_leaving_removes_the_flight() {
        let mut flights = Flights::default();
        flights.start("k".into(), 7, 2, None, waiter(2));
        flights.join("k", waiter(3)).ok().unwrap();
        assert_eq!(flights.leave("k", 3), Left::Nothing);
        assert_eq!(flights.leave("k", 2), Left::Nothing);
        assert!(flights.is_empty());
        assert_eq!(
            flights.leave("k", 2),
            Left::Nothing,
            "leaving twice is harmless"
        );
    }
}
