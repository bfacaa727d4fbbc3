// Sandbox Sign in with Apple: "Continue" posts the answer to the app's redirect URL as
// Apple's form_post does (code, state, and on first sign-in `user`); "Cancel" posts
// error=user_cancelled_authorize. The server checked redirect_uri against the app's own.
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('sandbox-apple-id').textContent);
  document.getElementById('client').textContent = data.clientId || 'an app';
  if (!data.redirectUri) {
    document.getElementById('problem').textContent = 'Unknown client or redirect URL: this page answers only the app\'s own registered redirect URL.';
    return;
  }
  function post(fields) {
    fields.state = data.state;
    postForm(data.redirectUri, fields);
  }
  document.getElementById('continue').addEventListener('click', function () {
    var email = document.getElementById('email').value || 'sandbox-user@example.com';
    var fields = { code: data.codePrefix + '.' + btoa(email).replace(/=+$/, '') };
    if (document.getElementById('share-name').checked) {
      fields.user = JSON.stringify({ name: { firstName: 'Ada', lastName: 'Lovelace' }, email: email });
    }
    post(fields);
  });
  document.getElementById('cancel').addEventListener('click', function () {
    post({ error: 'user_cancelled_authorize' });
  });
}());
