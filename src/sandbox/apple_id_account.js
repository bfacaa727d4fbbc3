// Sandbox Apple ID page: shows what the last notification did, and keeps the Apple ID typed.
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('sandbox-apple-id-account').textContent);
  if (data.email) {
    document.getElementById('email').value = data.email;
  }
  if (data.sent) {
    document.getElementById('result').textContent =
      'Sent ' + data.sent + ' for ' + data.email + ': the app answered ' + data.answer + '.';
  }
}());
