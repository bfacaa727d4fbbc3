//! Page templates, split once at start-up into static text and per-request holes.

use actix_web::{HttpResponse, HttpResponseBuilder};

use crate::response;

enum Piece {
    Text(String),
    Nonce,
    Data,
}

/// An HTML page with `{{NONCE}}` and `{{DATA}}` holes and its script inlined.
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
    pub(crate) body: &'static str,
}

impl ScriptAsset {
    pub(crate) fn new(stem: &str, body: &'static str) -> Self {
        use base64::Engine;
        use sha2::Digest;
        let sha256 = sha2::Sha256::digest(body.as_bytes());
        let hash: String = sha256[..8].iter().map(|b| format!("{b:02x}")).collect();
        let sri =
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(body.as_bytes()));
        Self {
            name: format!("{stem}.{hash}.js"),
            integrity: format!("sha384-{sri}"),
            body,
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
            .body(self.body)
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
        while let Some(start) = rest.find("{{") {
            let (hole, len) = if rest[start..].starts_with("{{NONCE}}") {
                (Piece::Nonce, "{{NONCE}}".len())
            } else if rest[start..].starts_with("{{DATA}}") {
                (Piece::Data, "{{DATA}}".len())
            } else {
                pieces.push(Piece::Text(rest[..start + 2].to_owned()));
                rest = &rest[start + 2..];
                continue;
            };
            pieces.push(Piece::Text(rest[..start].to_owned()));
            pieces.push(hole);
            rest = &rest[start + len..];
        }
        pieces.push(Piece::Text(rest.to_owned()));
        let size_hint = html.len() + 1024;
        Self { pieces, size_hint }
    }

    /// Fills the holes: `data` is serialised as script-safe JSON.
    pub(crate) fn render<T: serde::Serialize>(&self, nonce: &str, data: &T) -> String {
        let json = response::json_for_script(data);
        let mut out = String::with_capacity(self.size_hint + json.len());
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Nonce => out.push_str(nonce),
                Piece::Data => out.push_str(&json),
            }
        }
        out
    }

    /// A `200` response with the page and the sign-in's security headers.
    pub(crate) fn respond<T: serde::Serialize>(
        &self,
        data: &T,
        extra_script_src: &str,
        extra_directives: &str,
    ) -> HttpResponse {
        let nonce = response::nonce();
        let mut builder: HttpResponseBuilder = HttpResponse::Ok();
        response::secure_page(&mut builder, &nonce, extra_script_src, extra_directives);
        builder.body(self.render(&nonce, data))
    }
}
