//! The crate's one page-template mechanism: a page is split once into static text and
//! per-request holes, `{{NONCE}}` (the CSP nonce), `{{DATA}}` (script-safe JSON) and named text
//! fields such as `{{MESSAGE}}` (HTML-escaped). Every page the crate or its stand-ins serve is
//! one of these.

use actix_web::{HttpResponse, HttpResponseBuilder};

use super::{escape_html, json_for_script, nonce, secure_page};

/// The script every page that ends in a POSTed form shares (the login page's hand-off, the
/// return page, Sign in with Apple's relay, the stand-ins' pages).
const POST_FORM_JS: &str = include_str!("../pages/post_form.js");

/// A page's script with the shared form-posting script before it.
pub(crate) fn with_post_form(script: &str) -> String {
    [POST_FORM_JS, script].concat()
}

enum Piece {
    Text(String),
    Nonce,
    Data,
    Field(String),
}

/// An HTML page with `{{NONCE}}`, `{{DATA}}` and named `{{FIELD}}` holes, its script inlined.
pub(crate) struct PageTemplate {
    pieces: Vec<Piece>,
    size_hint: usize,
}

/// A page script served as a static asset: content-hashed name, SRI hash, cached for a year.
pub(crate) struct ScriptAsset {
    /// The file name under `{prefix}/assets/`, e.g. `login.3f2a….js`.
    pub(crate) name: String,
    /// `sha384-…` for the `integrity` attribute.
    pub(crate) integrity: String,
    pub(crate) body: actix_web::web::Bytes,
}

impl ScriptAsset {
    pub(crate) fn new(stem: &str, body: String) -> Self {
        use base64::Engine;
        use sha2::Digest;
        let sha256 = sha2::Sha256::digest(body.as_bytes());
        let hash: String = sha256[..8].iter().map(|b| format!("{b:02x}")).collect();
        let sri =
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(body.as_bytes()));
        Self {
            name: format!("{stem}.{hash}.js"),
            integrity: format!("sha384-{sri}"),
            body: body.into(),
        }
    }

    /// The asset's answer: `immutable`, a year of caching (the name changes with the content).
    pub(crate) fn respond(&self) -> HttpResponse {
        HttpResponse::Ok()
            .content_type("text/javascript; charset=utf-8")
            .insert_header((
                actix_web::http::header::CACHE_CONTROL,
                "public, max-age=31536000, immutable",
            ))
            .insert_header((actix_web::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .body(self.body.clone())
    }
}

impl PageTemplate {
    /// A page whose `{{SCRIPT}}` hole is an external script tag for `asset` (relative to the
    /// page, under `assets/`), with the page's nonce and the asset's SRI hash.
    pub(crate) fn with_asset(html: &str, asset: &ScriptAsset) -> Self {
        let tag = format!(
            r#"<script src="assets/{}" integrity="{}" nonce="{{{{NONCE}}}}" defer></script>"#,
            asset.name, asset.integrity
        );
        let html = html.replace(r#"<script nonce="{{NONCE}}">{{SCRIPT}}</script>"#, &tag);
        Self::new(&html, "")
    }

    pub(crate) fn new(html: &str, script: &str) -> Self {
        let html = html.replace("{{SCRIPT}}", script);
        let mut pieces = Vec::new();
        let mut rest = html.as_str();
        let mut text = String::new();
        while let Some(start) = rest.find("{{") {
            text.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            // A hole is `{{` upper-case letters or `_` `}}`; anything else is text.
            let name_len = after
                .bytes()
                .take_while(|b| b.is_ascii_uppercase() || *b == b'_')
                .count();
            if name_len == 0 || !after[name_len..].starts_with("}}") {
                text.push_str("{{");
                rest = after;
                continue;
            }
            let hole = match &after[..name_len] {
                "NONCE" => Piece::Nonce,
                "DATA" => Piece::Data,
                name => Piece::Field(name.to_owned()),
            };
            pieces.push(Piece::Text(std::mem::take(&mut text)));
            pieces.push(hole);
            rest = &after[name_len + 2..];
        }
        text.push_str(rest);
        pieces.push(Piece::Text(text));
        let size_hint = html.len() + 1024;
        Self { pieces, size_hint }
    }

    /// Fills the holes: `data` is serialised as script-safe JSON.
    pub(crate) fn render<T: serde::Serialize>(&self, nonce: &str, data: &T) -> String {
        self.fill(nonce, &json_for_script(data), &[])
    }

    /// Fills the nonce and the named text fields, each HTML-escaped (a field not given is
    /// left empty).
    pub(crate) fn render_fields(&self, nonce: &str, fields: &[(&str, &str)]) -> String {
        self.fill(nonce, "null", fields)
    }

    fn fill(&self, nonce: &str, json: &str, fields: &[(&str, &str)]) -> String {
        let mut out = String::with_capacity(self.size_hint + json.len());
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Nonce => out.push_str(nonce),
                Piece::Data => out.push_str(json),
                Piece::Field(name) => {
                    if let Some((_, value)) = fields.iter().find(|(n, _)| n == name) {
                        out.push_str(&escape_html(value));
                    }
                }
            }
        }
        out
    }

    /// `builder`'s answer (its status and headers) with the page's fields filled and the
    /// sign-in's security headers.
    pub(crate) fn respond_fields(
        &self,
        mut builder: HttpResponseBuilder,
        fields: &[(&str, &str)],
    ) -> HttpResponse {
        let nonce = nonce();
        secure_page(&mut builder, &nonce, "", "");
        builder.body(self.render_fields(&nonce, fields))
    }

    /// A `200` response with the page and the sign-in's security headers.
    pub(crate) fn respond<T: serde::Serialize>(
        &self,
        data: &T,
        extra_script_src: &str,
        extra_directives: &str,
    ) -> HttpResponse {
        let nonce = nonce();
        let mut builder: HttpResponseBuilder = HttpResponse::Ok();
        secure_page(&mut builder, &nonce, extra_script_src, extra_directives);
        builder.body(self.render(&nonce, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_are_filled_and_fields_escaped_and_other_braces_stay() {
        let page = PageTemplate::new(
            "<p nonce=\"{{NONCE}}\">{{MESSAGE}}</p>{{ not a hole }}{{lower}}{{\
             <script>{{DATA}}</script>{{SCRIPT}}<b>{{MISSING}}</b>{{OPEN",
            "go()",
        );
        let out = page.render_fields("N", &[("MESSAGE", "<a & \"b\">")]);
        assert_eq!(
            out,
            "<p nonce=\"N\">&lt;a &amp; &quot;b&quot;&gt;</p>{{ not a hole }}{{lower}}{{\
             <script>null</script>go()<b></b>{{OPEN"
        );
        let out = page.render("N", &serde_json::json!({"a": "</script>"}));
        assert!(
            out.contains(r#"<script>{"a":"\u003c/script\u003e"}</script>"#),
            "{out}"
        );
    }
}
