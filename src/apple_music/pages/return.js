// Return page of the redirect login: Apple sends the browser back here with the result in
// the URL fragment (base64 of {"musicUserToken", "itre", "cid"}). The fragment never reaches
// the server, so this page reads it, removes it and the query from the address bar, and
// submits it with the login's hand-back value from this page's own URL (`?handback=…`, put
// there by the login page). The page knows nothing of the session: a return that does not
// carry this browser's hand-back is refused by the server.
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('apple-music-return').textContent);
  var fragment = location.hash.replace(/^#/, '');
  var handback = new URLSearchParams(location.search).get('handback') || '';
  history.replaceState(null, '', location.pathname);

  function decode(text) {
    var b64 = text.replace(/-/g, '+').replace(/_/g, '/');
    while (b64.length % 4) { b64 += '='; }
    var binary = atob(b64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    var value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    if (!value || typeof value.musicUserToken !== 'string' || value.musicUserToken === '') { throw new Error('no token'); }
    return value;
  }

  var fields = { handback: handback, id_token_hint: data.developerToken };
  if (!fragment) {
    fields.error = 'declined'; // what Apple sends on refusal here is not known
  } else {
    try {
      var result = decode(decodeURIComponent(fragment));
      fields.code = result.musicUserToken;
      fields.restricted = result.itre === '1' ? '1' : '0';
    } catch (e) {
      fields.fragment = fragment; // the server decides, and answers malformed_request
    }
  }
  postForm(data.callbackUrl, fields);
}());
