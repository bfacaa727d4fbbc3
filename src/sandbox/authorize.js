// Sandbox authorizer: speaks the popup protocol (JSON-RPC 2.0 over postMessage) to its
// opener, or, opened without one, sends the browser back to `referrer` with the result in
// the URL fragment, as Apple's same-window hand-off does.
(function () {
  'use strict';
  var params = new URLSearchParams(location.search);
  var referrer = params.get('referrer');
  var problem = document.getElementById('problem');
  var nextId = 1;
  var info = null;

  function decodeInfo(a) {
    var binary = atob(a);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  }

  function show(value) {
    info = value;
    document.getElementById('app-name').textContent = value.thirdPartyName || 'An app';
    if (value.thirdPartyIconURL) {
      var icon = document.getElementById('icon');
      icon.src = value.thirdPartyIconURL;
      icon.hidden = false;
    }
  }

  // The sandbox hands its tokens only to pages of its own origin: a `referrer` elsewhere is
  // refused, so no other site can collect a token through it.
  var targetOrigin = null;
  try { targetOrigin = new URL(referrer).origin; } catch (e) { targetOrigin = null; }
  if (targetOrigin !== location.origin) { targetOrigin = null; }
  if (!referrer || !targetOrigin || params.get('app') !== 'music' || params.get('p') !== 'subscribe' || !params.get('a')) {
    problem.textContent = 'Missing or wrong parameters: expected a, referrer (a page of this site), app=music and p=subscribe.';
  }
  try { show(decodeInfo(params.get('a') || '')); } catch (e) { problem.textContent = 'The `a` parameter is not base64 of JSON.'; }

  function randomToken() {
    var bytes = new Uint8Array(48);
    crypto.getRandomValues(bytes);
    var text = '';
    for (var i = 0; i < bytes.length; i++) { text += String.fromCharCode(bytes[i]); }
    return 'sandbox.' + btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function send(method, methodParams) {
    var message = { id: nextId++, jsonrpc: '2.0', method: method };
    if (methodParams) { message.params = methodParams; }
    window.opener.postMessage(message, targetOrigin);
  }

  if (window.opener && targetOrigin) {
    window.addEventListener('message', function (event) {
      if (event.source !== window.opener || event.origin !== targetOrigin) { return; }
      var message = event.data;
      if (message && message.jsonrpc === '2.0' && typeof message.result === 'string') {
        try { show(JSON.parse(message.result)); } catch (e) { problem.textContent = 'thirdPartyInfo was not JSON.'; }
      }
    });
    send('thirdPartyInfo');
  }

  function finish(method) {
    var restricted = document.getElementById('restricted').checked ? '1' : '0';
    var token = randomToken();
    if (window.opener && targetOrigin) {
      if (method === 'authorize') { send('authorize', [token, restricted, 'sandbox-cid']); }
      else { send(method); }
      window.close();
      return;
    }
    if (!targetOrigin) { return; }
    var back = new URL(referrer);
    if (method === 'authorize') {
      var json = JSON.stringify({ musicUserToken: token, itre: restricted, cid: 'sandbox-cid' });
      back.hash = btoa(json);
    } else {
      back.hash = '';
    }
    location.assign(back.toString());
  }

  document.getElementById('allow').addEventListener('click', function () { finish('authorize'); });
  document.getElementById('decline').addEventListener('click', function () { finish('decline'); });
  document.getElementById('unavailable').addEventListener('click', function () { finish('unavailable'); });
}());
