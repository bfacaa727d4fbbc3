// Sign in with Apple posts its answer from appleid.apple.com: a cross-site POST, which carries
// no SameSite=Lax session cookie. This page, served in answer, posts the same fields again
// from our own origin, so the session comes along and the login state can be checked.
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('apple-id-relay').textContent);
  postForm(data.action, data.fields);
}());
