//! What the stand-ins for Apple Music API answer: one behaviour for the sandbox (served on
//! `/v1/…`) and for `test_util::AppleMusicStandIn` (in process), covering what apps call first,
//! with `404` where Apple would answer it.

use serde_json::{json, Value};

/// How the caller classified the request's music user token.
pub(crate) enum UserToken {
    /// None was sent.
    Missing,
    /// Accepted.
    Accepted,
    /// Refused (`403`): expired or revoked.
    Refused,
    /// An account without a subscription (`400`, code `40015`).
    NoSubscription,
}

fn error(status: u16, code: &str, title: &str) -> (u16, Value) {
    (
        status,
        json!({"errors": [{"status": status.to_string(), "code": code, "title": title}]}),
    )
}

fn song(id: &str, name: &str, artist: &str) -> Value {
    json!({"id": id, "type": "songs", "href": format!("/v1/catalog/us/songs/{id}"),
           "attributes": {"name": name, "artistName": artist, "albumName": "Stand-in Sessions",
                          "durationInMillis": 200_000, "genreNames": ["Pop"]}})
}

fn library(kind: &str, items: &[(&str, &str)]) -> Value {
    let data: Vec<Value> = items
        .iter()
        .map(|(id, name)| {
            json!({"id": id, "type": format!("library-{kind}"),
                   "href": format!("/v1/me/library/{kind}/{id}"), "attributes": {"name": name}})
        })
        .collect();
    json!({"data": data, "meta": {"total": items.len()}})
}

/// The answer to `method path` (`path` with its query), the developer token being valid.
pub(crate) fn answer(method: &str, path: &str, user_token: UserToken) -> (u16, Value) {
    let path_only = path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path_only.trim_matches('/').split('/').collect();
    if segments.first() != Some(&"v1") {
        return error(404, "40400", "Resource Not Found");
    }
    if segments.get(1) == Some(&"me") {
        match user_token {
            UserToken::Accepted => {}
            UserToken::Missing | UserToken::Refused => return error(403, "40300", "Forbidden"),
            UserToken::NoSubscription => return error(400, "40015", "No Apple Music subscription"),
        }
    }
    match (method, &segments[1..]) {
        ("GET", ["test"]) => (200, json!({"meta": {"stand_in": true}})),
        ("GET", ["me", "storefront"]) => (
            200,
            json!({"data": [{"id": "us", "type": "storefronts", "href": "/v1/storefronts/us",
                   "attributes": {"name": "United States (stand-in)", "defaultLanguageTag": "en-US",
                                  "supportedLanguageTags": ["en-US", "es-MX"],
                                  "explicitContentPolicy": "allowed"}}]}),
        ),
        ("GET", ["me", "library", "songs"]) => (
            200,
            library(
                "songs",
                &[("i.song1", "First Light"), ("i.song2", "Second Wind")],
            ),
        ),
        ("GET", ["me", "library", "albums"]) => {
            (200, library("albums", &[("l.album1", "Stand-in Sessions")]))
        }
        ("GET", ["me", "library", "playlists"]) => {
            (200, library("playlists", &[("p.playlist1", "Road trip")]))
        }
        ("POST", ["me", "library", "playlists"]) => (
            201,
            json!({"data": [{"id": "p.created", "type": "library-playlists",
                   "attributes": {"name": "New playlist"}}]}),
        ),
        ("GET", ["me", "recent", "played"] | ["me", "recent", "played", "tracks"]) => (
            200,
            json!({"data": [song("1001", "First Light", "The Stand-ins")]}),
        ),
        ("GET", ["catalog", _, "search"]) => (
            200,
            json!({"results": {"songs": {"href": path, "data": [
                song("1001", "First Light", "The Stand-ins"),
                song("1002", "Second Wind", "The Stand-ins"),
            ]}}}),
        ),
        ("GET", ["catalog", _, "songs", id]) if id.chars().all(|c| c.is_ascii_digit()) => (
            200,
            json!({"data": [song(id, "First Light", "The Stand-ins")]}),
        ),
        _ => error(404, "40400", "Resource Not Found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_apps_call_first_answers_and_the_rest_is_404() {
        for path in [
            "/v1/me/library/songs?limit=25",
            "/v1/me/library/albums",
            "/v1/me/library/playlists",
            "/v1/me/recent/played/tracks",
            "/v1/catalog/us/search?term=light&types=songs",
            "/v1/catalog/us/songs/1001",
            "/v1/me/storefront",
        ] {
            assert_eq!(answer("GET", path, UserToken::Accepted).0, 200, "{path}");
        }
        assert_eq!(
            answer("GET", "/v1/me/nothing-here", UserToken::Accepted).0,
            404
        );
        assert_eq!(
            answer("GET", "/v1/catalog/us/songs/abc", UserToken::Accepted).0,
            404
        );
        assert_eq!(
            answer("DELETE", "/v1/me/library/songs", UserToken::Accepted).0,
            404
        );
        assert_eq!(
            answer("GET", "/v1/me/library/songs", UserToken::Refused).0,
            403
        );
        assert_eq!(
            answer("GET", "/v1/me/library/songs", UserToken::Missing).0,
            403
        );
        let (status, body) = answer("GET", "/v1/me/storefront", UserToken::NoSubscription);
        assert_eq!(
            (status, body["errors"][0]["code"].as_str()),
            (400, Some("40015"))
        );
        assert_eq!(
            answer("GET", "/v1/catalog/us/songs/1", UserToken::Missing).0,
            200
        );
    }
}
