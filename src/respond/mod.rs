//! Every answer the crate writes itself: the JSON error envelope (one function,
//! [`error_json`]), HTML or JSON by `Accept`, the pages' security headers, page templates
//! ([`page`]) and the scripts they share, and safe embedding of JSON in a page.

use std::sync::LazyLock;
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};

use crate::strategy::{SignInError, StrategyError};

pub(crate) mod page;

pub(crate) use page::{with_post_form, PageTemplate, ScriptAsset};

/// The crate's one JSON error answer: `builder`'s status and headers (`Retry-After`,
/// `WWW-Authenticate`, `Allow`), `Cache-Control: no-store`, and the body
/// `{"error": error, <field>: <value>, …}`.
pub(crate) fn error_json(
    mut builder: HttpResponseBuilder,
    error: &str,
    fields: &[(&str, &str)],
) -> HttpResponse {
    let mut body = serde_json::Map::with_capacity(fields.len() + 1);
    body.insert("error".into(), error.into());
    for (name, value) in fields {
        body.insert((*name).into(), (*value).into());
    }
    builder
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(body)
}

/// The wait a `503` suggests when a session or account store could not be reached.
pub(crate) const STORE_RETRY_AFTER: Duration = Duration::from_secs(5);

/// An error answer's builder: `status` and, when waiting helps, `Retry-After` in whole
/// seconds (at least 1, at most [`MAX_RETRY_AFTER`](crate::MAX_RETRY_AFTER)).
pub(crate) fn error_status(
    status: StatusCode,
    retry_after: Option<Duration>,
) -> HttpResponseBuilder {
    let mut builder = HttpResponse::build(status);
    if let Some(wait) = retry_after {
        let secs = wait.min(crate::MAX_RETRY_AFTER).as_secs().max(1);
        builder.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
    builder
}

/// `403 {"error": "forbidden", "message": "cross-origin <what> refused"}`: a state-changing
/// request whose `Origin` (or `Referer`) is not the app's.
pub(crate) fn cross_origin_refused(what: &str) -> HttpResponse {
    error_json(
        HttpResponse::Forbidden(),
        "forbidden",
        &[("message", &format!("cross-origin {what} refused"))],
    )
}

/// Whether the client asked for HTML: its `Accept` lists `text/html` (browsers navigating).
/// curl's `*/*` and a missing header count as JSON clients.
pub(crate) fn wants_html(req: &HttpRequest) -> bool {
    accepts_html(req.headers().get_all(header::ACCEPT))
}

/// [`wants_html`] on `Accept` header values kept aside.
pub(crate) fn accepts_html<'a>(accept: impl IntoIterator<Item = &'a HeaderValue>) -> bool {
    accept
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let media = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                matches!(
                    p.trim().replace(' ', "").as_str(),
                    "q=0" | "q=0.0" | "q=0.00" | "q=0.000"
                )
            });
            media.eq_ignore_ascii_case("text/html") && !refused
        })
}

/// A fresh random nonce for a Content-Security-Policy.
pub(crate) fn nonce() -> String {
    oauth2::CsrfToken::new_random().secret().clone()
}

/// Headers every page of the sign-in carries: no caching, a CSP allowing only the page's own
/// scripts (by nonce) and `extra_script_src`, a referrer policy that still sends the origin to
/// Apple (`no-referrer` breaks the sign-in), and no framing.
pub(crate) fn secure_page(
    builder: &mut HttpResponseBuilder,
    nonce: &str,
    extra_script_src: &str,
    extra_directives: &str,
) {
    // Pieces pushed onto one string: the formatting machinery was a visible part of a login
    // page's time.
    const REST: &str =
        "; img-src 'self' https: data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
    let mut csp = String::with_capacity(
        160 + 2 * nonce.len() + extra_script_src.len() + REST.len() + extra_directives.len(),
    );
    for piece in [
        "default-src 'none'; script-src 'nonce-",
        nonce,
        "'",
        extra_script_src,
        "; style-src 'nonce-",
        nonce,
        "'",
        REST,
        extra_directives,
    ] {
        csp.push_str(piece);
    }
    builder
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")))
        .insert_header((
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ))
        .insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .content_type("text/html; charset=utf-8");
}

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Serialises `value` as JSON that is inert inside `<script type="application/json">`: every
/// `<`, `>`, `&` and the JavaScript line separators are `\u` escapes, so no `</script>` or
/// comment opener can appear. `JSON.parse` reads it back unchanged.
pub(crate) fn json_for_script<T: serde::Serialize>(value: &T) -> String {
    let json = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
    // U+2028 and U+2029 are E2 80 A8 and E2 80 A9 in UTF-8. Vectorised searches for the
    // bytes that may need an escape; most blocks hold none, and then the JSON is the answer.
    let bytes = json.as_bytes();
    let candidate = |from: usize| {
        let rest = &bytes[from..];
        [
            memchr::memchr3(b'<', b'>', b'&', rest),
            memchr::memchr(0xE2, rest),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|at| from + at)
    };
    let Some(first) = candidate(0) else {
        return json;
    };
    let mut out = String::with_capacity(json.len() + 32);
    let (mut copied, mut next) = (0, Some(first));
    while let Some(i) = next {
        let escape = match &bytes[i..] {
            [b'<', ..] => Some(("\\u003c", 1)),
            [b'>', ..] => Some(("\\u003e", 1)),
            [b'&', ..] => Some(("\\u0026", 1)),
            [0xE2, 0x80, 0xA8, ..] => Some(("\\u2028", 3)),
            [0xE2, 0x80, 0xA9, ..] => Some(("\\u2029", 3)),
            _ => None,
        };
        if let Some((escape, len)) = escape {
            out.push_str(&json[copied..i]);
            out.push_str(escape);
            copied = i + len;
        }
        next = candidate(i + 1);
    }
    out.push_str(&json[copied..]);
    out
}

/// The JSON body of a failed sign-in:
/// `{"error": "authorization_error" | "token_error" | "upstream_error", "reason": …, "message": …}`.
pub(crate) fn failure_json(error: &dyn StrategyError) -> HttpResponse {
    error_json(
        error_status(error.status(), error.retry_after()),
        error.kind().as_str(),
        &[("reason", error.reason()), ("message", &error.to_string())],
    )
}

static ERROR_PAGE: LazyLock<PageTemplate> =
    LazyLock::new(|| PageTemplate::new(include_str!("../pages/error.html"), ""));

/// A small HTML page that says what went wrong and links back to the login.
pub(crate) fn failure_html(error: &dyn StrategyError, login_url: &str) -> HttpResponse {
    ERROR_PAGE.respond_fields(
        error_status(error.status(), error.retry_after()),
        &[
            ("TITLE", &error.title()),
            ("KIND", error.kind().as_str()),
            ("REASON", error.reason()),
            ("LOGIN_URL", login_url),
            ("MESSAGE", &error.to_string()),
        ],
    )
}

/// The answer to a failed sign-in for this request: HTML for browsers, JSON otherwise.
pub(crate) fn failure(
    req: &HttpRequest,
    error: &dyn StrategyError,
    login_url: &str,
) -> HttpResponse {
    if wants_html(req) {
        failure_html(error, login_url)
    } else {
        failure_json(error)
    }
}

/// `303 See Other` to `location`.
pub(crate) fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .finish()
}

impl<E: StrategyError + std::fmt::Debug> actix_web::ResponseError for SignInError<E> {
    fn status_code(&self) -> actix_web::http::StatusCode {
        StrategyError::status(self)
    }

    /// JSON; the mounted routes choose JSON or HTML by the request's `Accept` header.
    fn error_response(&self) -> actix_web::HttpResponse {
        failure_json(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_policy_allows_the_nonce_and_the_extras_and_nothing_inline() {
        let mut builder = HttpResponse::Ok();
        secure_page(
            &mut builder,
            "N0NCE",
            " https://cdn.example",
            "; connect-src 'self'",
        );
        let page = builder.finish();
        let csp = page.headers().get(header::CONTENT_SECURITY_POLICY).unwrap();
        assert_eq!(
            csp.to_str().unwrap(),
            "default-src 'none'; script-src 'nonce-N0NCE' https://cdn.example; \
             style-src 'nonce-N0NCE'; img-src 'self' https: data:; form-action 'self'; \
             base-uri 'none'; frame-ancestors 'none'; connect-src 'self'"
        );
        assert_eq!(page.headers().get(header::X_FRAME_OPTIONS).unwrap(), "DENY");
    }

    #[test]
    fn script_json_escapes_what_could_end_the_script_and_reads_back() {
        let value = serde_json::json!({
            "returnTo": "/a?b=1&c=2",
            "name": "</script><!-- x -->",
            "line": "one\u{2028}two\u{2029}three",
            "plain": "nothing to escape",
            "dash": "a\u{2013}b\u{2027}c",
        });
        let out = json_for_script(&value);
        for unsafe_text in ["<", ">", "&", "\u{2028}", "\u{2029}"] {
            assert!(!out.contains(unsafe_text), "{unsafe_text:?} in {out}");
        }
        assert!(
            out.contains(r"\u003c/script\u003e\u003c!-- x --\u003e"),
            "{out}"
        );
        assert!(out.contains(r"one\u2028two\u2029three"), "{out}");
        assert!(
            out.contains("a\u{2013}b\u{2027}c"),
            "other E2 80 characters stay: {out}"
        );
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back, value);
        // Nothing to escape: the JSON as serde_json writes it.
        let plain = serde_json::json!({"state": "abc", "n": 1});
        assert_eq!(json_for_script(&plain), plain.to_string());
    }

    proptest::proptest! {
        #[test]
        fn script_json_always_reads_back_and_never_holds_a_tag(text in "\\PC{0,40}") {
            let out = json_for_script(&text);
            proptest::prop_assert!(!out.contains('<') && !out.contains('>') && !out.contains('&'));
            proptest::prop_assert_eq!(serde_json::from_str::<String>(&out).unwrap(), text);
        }
    }
}
