//! Reading a callback: form bodies and query strings into [`CallbackParams`].

use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest};

use super::error::FlowError;

/// Largest callback request (query string or form body) the crate reads.
pub const MAX_CALLBACK_BYTES: usize = 16 * 1024;

/// The parameters of a callback request, each given once and valid UTF-8. Its `Debug`
/// output names the parameters but not their values (which hold tokens).
#[derive(Clone, Default)]
pub struct CallbackParams {
    pairs: Vec<(String, String)>,
}

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.pairs.iter().map(|(k, _)| k))
            .finish()
    }
}

impl CallbackParams {
    /// The bytes of all names and values.
    pub(crate) fn total_len(&self) -> usize {
        self.pairs.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// Parses `application/x-www-form-urlencoded` bytes (a query string or a form body).
    /// A parameter given twice, a name or value that is not UTF-8 once decoded, or more than
    /// [`MAX_CALLBACK_BYTES`] is [`FlowError::MalformedRequest`].
    pub fn parse(raw: &[u8]) -> Result<Self, FlowError> {
        if raw.len() > MAX_CALLBACK_BYTES {
            return Err(FlowError::malformed("the request is too large"));
        }
        let mut out = Self::default();
        for piece in raw.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let mut kv = piece.splitn(2, |b| *b == b'=');
            let name = decode_component(kv.next().unwrap_or_default())?;
            let value = decode_component(kv.next().unwrap_or_default())?;
            out.push(name, value)?;
        }
        Ok(out)
    }

    /// Builds params from pairs (for strategies that receive JSON, and for tests); a name
    /// given twice is [`FlowError::MalformedRequest`].
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self, FlowError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut out = Self::default();
        for (k, v) in pairs {
            out.push(k.into(), v.into())?;
        }
        Ok(out)
    }

    fn push(&mut self, name: String, value: String) -> Result<(), FlowError> {
        if self.get(&name).is_some() {
            return Err(FlowError::malformed(format!(
                "parameter `{}` given more than once",
                name.chars().take(40).collect::<String>()
            )));
        }
        self.pairs.push((name, value));
        Ok(())
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn decode_component(raw: &[u8]) -> Result<String, FlowError> {
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&plus_as_space).collect();
    String::from_utf8(bytes).map_err(|_| FlowError::malformed("a parameter is not valid UTF-8"))
}

/// What a body may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    Form,
    FormOrJson,
}

/// Reads a form body (or, with [`BodyKind::FormOrJson`], a JSON one) of at most
/// [`MAX_CALLBACK_BYTES`], which must arrive within `timeout`
/// ([`FlowError::RequestTimeout`] otherwise).
pub(crate) async fn read_body(
    req: &HttpRequest,
    body: web::Payload,
    kind: BodyKind,
    timeout: Duration,
) -> Result<web::BytesMut, FlowError> {
    actix_web::rt::time::timeout(timeout, read_body_inner(req, body, kind))
        .await
        .unwrap_or(Err(FlowError::RequestTimeout))
}

async fn read_body_inner(
    req: &HttpRequest,
    mut body: web::Payload,
    kind: BodyKind,
) -> Result<web::BytesMut, FlowError> {
    use futures_util::StreamExt;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-www-form-urlencoded");
    if kind == BodyKind::Form && !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(FlowError::malformed(
            "expected a form (application/x-www-form-urlencoded)",
        ));
    }
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|_| FlowError::malformed("the request body could not be read"))?;
        if bytes.len() + chunk.len() > MAX_CALLBACK_BYTES {
            return Err(FlowError::malformed("the request is too large"));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{any, prop_assert_eq, proptest};

    #[test]
    fn a_callback_of_the_largest_size_parses_and_one_byte_more_does_not() {
        let largest = format!("a={}", "x".repeat(MAX_CALLBACK_BYTES - 2));
        assert_eq!(largest.len(), MAX_CALLBACK_BYTES);
        let params = CallbackParams::parse(largest.as_bytes()).unwrap();
        assert_eq!(params.get("a").map(str::len), Some(MAX_CALLBACK_BYTES - 2));
        let over = format!("{largest}x");
        assert!(matches!(
            CallbackParams::parse(over.as_bytes()),
            Err(FlowError::MalformedRequest { .. })
        ));
    }

    #[test]
    fn duplicates_and_bad_utf8_are_malformed() {
        let reason = |raw: &[u8]| CallbackParams::parse(raw).err().map(|e| e.to_string());
        assert!(reason(b"a=1&a=2")
            .unwrap()
            .contains("`a` given more than once"));
        assert!(reason(b"a=%ff").unwrap().contains("UTF-8"));
        assert!(reason(&vec![b'a'; MAX_CALLBACK_BYTES + 1])
            .unwrap()
            .contains("too large"));
        let ok = CallbackParams::parse(b"code=a+b%2B&state=&x").unwrap();
        assert_eq!(ok.get("code"), Some("a b+"));
        assert_eq!(ok.get("state"), Some(""));
        assert_eq!(ok.get("x"), Some(""));
        assert_eq!(format!("{ok:?}"), r#"["code", "state", "x"]"#);
        assert!(CallbackParams::from_pairs([("a", "1"), ("a", "2")]).is_err());
    }

    proptest! {
        #[test]
        fn the_callback_parser_never_panics_and_keeps_names_unique(
            raw in proptest::collection::vec(any::<u8>(), 0..256)
        ) {
            if let Ok(params) = CallbackParams::parse(&raw) {
                let mut names: Vec<&str> = params.pairs.iter().map(|(n, _)| n.as_str()).collect();
                let count = names.len();
                names.sort_unstable();
                names.dedup();
                prop_assert_eq!(names.len(), count);
            }
        }

        #[test]
        fn the_callback_parser_reads_back_what_a_form_encodes(
            pairs in proptest::collection::btree_map("[a-z_]{1,12}", "\\PC{0,40}", 0..6)
        ) {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter())
                .finish();
            let params = CallbackParams::parse(body.as_bytes()).unwrap();
            for (name, value) in &pairs {
                prop_assert_eq!(params.get(name), Some(value.as_str()));
            }
        }
    }
}
