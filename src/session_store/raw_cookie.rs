//! Session cookies sent with their base64 as it is.
//!
//! actix-session writes its cookie with `Cookie::encoded`, which percent-encodes every `/` and
//! `=` of the base64 value (`%2F`, `%3D`: three bytes each, about 3 % of a session cookie).
//! RFC 6265 allows both characters in a cookie value, and actix-session reads the cookie back
//! percent-decoded, so the same cookie can travel with them as they are.

use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::web::Bytes;

/// Rewrites each `Set-Cookie` that carries an `HttpOnly` cookie whose value is base64 with
/// only `%2F` and `%3D` escapes (what actix-session's private and signed cookies look like)
/// with those two characters unescaped. Any other cookie is left exactly as it is.
pub(super) fn unescape_session_cookies(headers: &mut HeaderMap) {
    let mut lines = headers.get_all(header::SET_COOKIE);
    let (Some(first), more) = (lines.next(), lines.next().is_some()) else {
        return;
    };
    if !more {
        // The usual case, one cookie: rewritten in place.
        if let Some(value) = rewrite(first) {
            if let Some(slot) = headers.get_mut(header::SET_COOKIE) {
                *slot = value;
            }
        }
        return;
    }
    let lines: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .map(|value| rewrite(value).unwrap_or_else(|| value.clone()))
        .collect();
    headers.remove(header::SET_COOKIE);
    for value in lines {
        headers.append(header::SET_COOKIE, value);
    }
}

fn rewrite(value: &HeaderValue) -> Option<HeaderValue> {
    unescape(value.as_bytes())
        .and_then(|bytes| HeaderValue::from_maybe_shared(Bytes::from(bytes)).ok())
}

/// The bytes of standard base64 other than `/` and `=` (which arrive escaped).
const BASE64: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric() || b == b'+' as usize;
        b += 1;
    }
    table
};

/// The `Set-Cookie` line with its value unescaped, if it is one to rewrite.
fn unescape(line: &[u8]) -> Option<Vec<u8>> {
    let pair_end = memchr::memchr(b';', line).unwrap_or(line.len());
    let (pair, attributes) = line.split_at(pair_end);
    let value_start = memchr::memchr(b'=', pair)? + 1;
    let value = &pair[value_start..];
    // Nothing escaped: nothing to do.
    memchr::memchr(b'%', value)?;
    let http_only = attributes
        .split(|&b| b == b';')
        .any(|attribute| attribute.trim_ascii().eq_ignore_ascii_case(b"httponly"));
    if !http_only {
        return None;
    }
    let base64 = |run: &[u8]| run.iter().all(|&b| BASE64[b as usize]);
    let mut runs = value.split(|&b| b == b'%');
    let mut out = Vec::with_capacity(line.len());
    out.extend_from_slice(&pair[..value_start]);
    // Before the first `%`: base64 only; after each: `2F` or `3D`, then base64.
    let head = runs.next()?;
    if !base64(head) {
        return None;
    }
    out.extend_from_slice(head);
    for run in runs {
        let (raw, rest) = match run {
            [b'2', b'F' | b'f', rest @ ..] => (b'/', rest),
            [b'3', b'D' | b'd', rest @ ..] => (b'=', rest),
            _ => return None,
        };
        if !base64(rest) {
            return None;
        }
        out.push(raw);
        out.extend_from_slice(rest);
    }
    out.extend_from_slice(attributes);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_sent(line: &str) -> String {
        let mut headers = HeaderMap::new();
        headers.append(header::SET_COOKIE, HeaderValue::from_str(line).unwrap());
        unescape_session_cookies(&mut headers);
        let mut lines = headers.get_all(header::SET_COOKIE);
        let out = lines.next().unwrap().to_str().unwrap().to_owned();
        assert!(lines.next().is_none());
        out
    }

    #[test]
    fn a_session_cookie_travels_with_its_base64_as_it_is() {
        assert_eq!(
            as_sent("id=ab%2Fc+d%3D%3D; HttpOnly; SameSite=Lax; Path=/"),
            "id=ab/c+d==; HttpOnly; SameSite=Lax; Path=/"
        );
        assert_eq!(
            as_sent("id=x%2fy%3d; Path=/; httponly"),
            "id=x/y=; Path=/; httponly"
        );
    }

    #[test]
    fn other_cookies_are_left_as_they_are() {
        for line in [
            // Not HttpOnly: a script may read it as sent.
            "prefs=a%2Fb; Path=/",
            // Other escapes: not a base64 value.
            "id=a%20b%2F; HttpOnly",
            "id=a%25%2F; HttpOnly",
            "id=a%2; HttpOnly",
            "id=a%2Fb.c; HttpOnly",
            // Nothing to unescape, or no value at all.
            "id=abc; HttpOnly",
            "id=; HttpOnly; Max-Age=0",
            "garbage; HttpOnly",
        ] {
            assert_eq!(as_sent(line), line);
        }
    }

    #[test]
    fn every_set_cookie_is_kept_in_order() {
        let mut headers = HeaderMap::new();
        for line in ["a=1%2F; HttpOnly", "b=2%2F", "c=3%3D; HttpOnly"] {
            headers.append(header::SET_COOKIE, HeaderValue::from_static(line));
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        unescape_session_cookies(&mut headers);
        let lines: Vec<_> = headers
            .get_all(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert_eq!(lines, ["a=1/; HttpOnly", "b=2%2F", "c=3=; HttpOnly"]);
        assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    }
}
