//! Sign-in sessions of the studio (docs/studio.md "Sign-in"): where the service has a token,
//! a browser signs in once with it and then carries a random session id in an `HttpOnly`,
//! `SameSite=Strict` cookie. Sessions live in memory only: a restart signs everyone out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};
use rand::Rng;

/// The cookie's name.
pub const COOKIE: &str = "tunewright_session";

/// How long a session lasts after sign-in: a working day, so a forgotten tab does not stay
/// signed in for ever.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// Most sessions held at once: each sign-in adds one, and a client signing in in a loop must
/// not grow memory without bound; past this the oldest session is dropped.
pub const MAX_SESSIONS: usize = 1024;

/// The live sessions: id -> when it expires.
#[derive(Debug, Default)]
pub struct SessionStore {
    sessions: Mutex<HashMap<String, Instant>>,
}

impl SessionStore {
    /// A new session; its id (64 hex digits, 256 random bits).
    pub fn create(&self) -> String {
        let bytes: [u8; 32] = rand::rng().random();
        let id = hex::encode(bytes);
        let now = Instant::now();
        let mut sessions = self.lock();
        sessions.retain(|_, expires| *expires > now);
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, expires)| **expires)
                .map(|(k, _)| k.clone())
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(id.clone(), now + SESSION_TTL);
        id
    }

    /// Whether `id` is a live session.
    pub fn is_valid(&self, id: &str) -> bool {
        self.lock()
            .get(id)
            .is_some_and(|expires| *expires > Instant::now())
    }

    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        // A panic while holding this lock cannot leave the map inconsistent (every update is
        // one call), so a poisoned lock is still usable.
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The session id the request's `Cookie` header carries, if any.
pub fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
}

/// Whether the request carries a live session.
pub fn signed_in(store: &SessionStore, headers: &HeaderMap) -> bool {
    session_id(headers).is_some_and(|id| store.is_valid(&id))
}

/// `Set-Cookie` for a new session (or, with `None`, one that clears it).
pub fn set_cookie(id: Option<&str>) -> HeaderValue {
    let mut c = cookie::Cookie::build((COOKIE, id.unwrap_or("").to_string()))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Strict);
    c = match id {
        Some(_) => c.max_age(cookie::time::Duration::seconds(SESSION_TTL.as_secs() as i64)),
        None => c.max_age(cookie::time::Duration::ZERO),
    };
    // A cookie built from a hex id and fixed attributes is always a valid header value.
    HeaderValue::from_str(&c.build().to_string()).unwrap_or(HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_created_found_and_removed() {
        let s = SessionStore::default();
        let id = s.create();
        assert_eq!(id.len(), 64);
        assert!(s.is_valid(&id));
        assert!(!s.is_valid("nope"));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {COOKIE}={id}")).unwrap(),
        );
        assert_eq!(session_id(&h).as_deref(), Some(id.as_str()));
        assert!(signed_in(&s, &h));
        s.remove(&id);
        assert!(!signed_in(&s, &h));
    }

    #[test]
    fn the_store_is_bounded() {
        let s = SessionStore::default();
        let first = s.create();
        for _ in 0..MAX_SESSIONS {
            s.create();
        }
        assert!(!s.is_valid(&first), "the oldest session made room");
        assert_eq!(s.lock().len(), MAX_SESSIONS);
    }

    #[test]
    fn the_cookie_is_http_only_and_strict() {
        let v = set_cookie(Some("abc"));
        let text = v.to_str().unwrap();
        assert!(text.contains("HttpOnly"), "{text}");
        assert!(text.contains("SameSite=Strict"), "{text}");
        assert!(text.starts_with(&format!("{COOKIE}=abc")), "{text}");
        assert!(set_cookie(None).to_str().unwrap().contains("Max-Age=0"));
    }
}
