// Apple Music sign-in page. Reads its data from the JSON block, runs the authorization
// (MusicKit JS, the popup protocol, or a same-window redirect) and submits the outcome to
// the callback as a POST form, so the token never sits in a URL.
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('apple-music-login').textContent);
  var button = document.getElementById('continue');
  var statusEl = document.getElementById('status');
  var finished = false;
  var timer = null;

  document.getElementById('app-name').textContent = data.appName;
  if (data.appIconUrl) {
    var icon = document.getElementById('app-icon');
    icon.src = data.appIconUrl;
    icon.hidden = false;
  }

  function setStatus(text) { statusEl.textContent = text; }

  function submit(fields) {
    if (finished) { return; }
    finished = true;
    if (timer) { clearTimeout(timer); }
    button.disabled = true;
    setStatus('Signing you in…');
    fields.state = data.state;
    fields.id_token_hint = data.developerToken;
    postForm(data.callbackUrl, fields);
  }

  function fail(reason) { submit({ error: reason }); }

  function startTimer() {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(function () { fail('timed_out'); }, data.timeoutMs);
  }

  // base64 of the UTF-8 bytes (btoa alone throws on non-Latin-1 names).
  function base64Utf8(text) {
    var bytes = new TextEncoder().encode(text);
    var binary = '';
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return btoa(binary);
  }

  function thirdPartyInfo() {
    var info = { thirdPartyName: data.appName, thirdPartyToken: data.developerToken };
    if (data.appIconUrl) { info.thirdPartyIconURL = data.appIconUrl; }
    return JSON.stringify(info);
  }

  function authorizeUrl(referrer) {
    var url = new URL(data.authorizeUrl);
    url.searchParams.set('a', base64Utf8(thirdPartyInfo()));
    url.searchParams.set('referrer', referrer);
    url.searchParams.set('app', 'music');
    url.searchParams.set('p', 'subscribe');
    return url.toString();
  }

  function clearCachedTokens() {
    var doomed = [];
    for (var i = 0; i < localStorage.length; i++) {
      var key = localStorage.key(i);
      if (key && key.indexOf('music.') === 0 && key.slice(-2) === '.u') { doomed.push(key); }
    }
    doomed.forEach(function (key) { localStorage.removeItem(key); });
    return doomed.length;
  }

  // --- direct: the authorization popup's postMessage protocol -------------------------
  function runDirect() {
    var authorizeOrigin = new URL(data.authorizeUrl).origin;
    var popup = null;
    var poll = null;

    window.addEventListener('message', function (event) {
      // Only our own popup, only from the authorize page's origin.
      if (!popup || event.source !== popup || event.origin !== authorizeOrigin) { return; }
      var message = event.data;
      if (typeof message === 'string') {
        try { message = JSON.parse(message); } catch (e) { return; }
      }
      if (!message || message.jsonrpc !== '2.0' || typeof message.method !== 'string') { return; }
      var params = Array.isArray(message.params) ? message.params : [];
      switch (message.method) {
        case 'thirdPartyInfo':
          popup.postMessage({ id: message.id, jsonrpc: '2.0', result: thirdPartyInfo() }, authorizeOrigin);
          break;
        case 'authorize':
          if (typeof params[0] !== 'string' || params[0] === '') { fail('missing music user token'); break; }
          submit({ code: params[0], restricted: params[1] === '1' ? '1' : '0' });
          break;
        case 'decline': fail('declined'); break;
        case 'unavailable': fail('unavailable'); break;
        case 'close': setTimeout(function () { fail('popup_closed'); }, 300); break;
        default: break;
      }
    });

    function open(fromClick) {
      if (finished) { return; }
      if (popup && !popup.closed) { popup.focus(); return; }
      popup = window.open(authorizeUrl(location.href), 'apple-music-service-view',
        'height=650,width=650,menubar=no,resizable=no,scrollbars=no,status=no,toolbar=no');
      if (!popup) {
        // Blocked. On the automatic attempt that is expected: wait for the click.
        if (fromClick) { fail('popup_blocked'); } else { setStatus('Click the button to continue.'); }
        return;
      }
      setStatus('Waiting for Apple Music…');
      startTimer();
      if (poll) { clearInterval(poll); }
      poll = setInterval(function () {
        if (popup && popup.closed) {
          clearInterval(poll);
          // Give a last message from the popup time to arrive.
          setTimeout(function () { fail('popup_closed'); }, 500);
        }
      }, 250);
    }

    button.addEventListener('click', function () { open(true); });
    button.disabled = false;
    setStatus('');
    open(false);
  }

  // --- redirect: same window, back to our return page with the result in the fragment ---
  function runRedirect() {
    function go() {
      setStatus('Taking you to Apple Music…');
      location.assign(authorizeUrl(new URL(data.returnUrl, location.href).toString()));
    }
    button.addEventListener('click', go);
    button.disabled = false;
    go();
  }

  // --- musickit: MusicKit JS v3 ---------------------------------------------------------
  function runMusicKit() {
    var instance = null;
    var pending = false;

    function authorize(fromClick) {
      if (finished || pending || !instance) { return; }
      pending = true;
      startTimer();
      setStatus('Waiting for Apple Music…');
      var result;
      try { result = instance.authorize(); } catch (e) { fail(String((e && e.message) || e || 'authorize failed')); return; }
      Promise.resolve(result).then(function (token) {
        if (typeof token !== 'string' || token === '') { fail('declined'); return; }
        var restricted = typeof instance.isRestricted === 'boolean' ? (instance.isRestricted ? '1' : '0') : null;
        submit({ code: token, restricted: restricted });
      }, function (error) {
        var text = error && (error.errorCode || error.message || error);
        fail(text ? String(text) : 'declined');
      });
      if (!fromClick) { pending = false; }
    }

    function configured() {
      instance = window.MusicKit.getInstance();
      button.disabled = false;
      setStatus('');
      if (data.forceDialog) {
        clearCachedTokens();
        Promise.resolve(instance.unauthorize && instance.unauthorize()).catch(function () {});
      } else if (hasCachedToken()) {
        authorize(false); // hands back the cached token without a popup
      }
    }

    function hasCachedToken() {
      for (var i = 0; i < localStorage.length; i++) {
        var key = localStorage.key(i);
        if (key && key.indexOf('music.') === 0 && key.slice(-2) === '.u') { return true; }
      }
      return false;
    }

    document.addEventListener('musickitloaded', function () {
      var app = { name: data.appName };
      if (data.appIconUrl) { app.icon = data.appIconUrl; }
      var configuring;
      try {
        configuring = window.MusicKit.configure({ developerToken: data.developerToken, app: app });
      } catch (e) { fail(String((e && e.message) || e)); return; }
      Promise.resolve(configuring).then(configured, function (e) { fail(String((e && e.message) || e || 'MusicKit could not be configured')); });
    });
    // authorize() must run inside the click: no await before it.
    button.addEventListener('click', function () { pending = false; authorize(true); });
    var script = document.createElement('script');
    script.src = data.musicKitUrl;
    script.async = true;
    script.onerror = function () { fail('MusicKit JS could not be loaded'); };
    document.head.appendChild(script);
  }

  // Optional: paste a music user token by hand (e.g. music.apple.com's media-user-token).
  if (data.manualTokenUrl) {
    var details = document.createElement('details');
    var summary = document.createElement('summary');
    summary.textContent = 'Paste a music user token instead';
    var form = document.createElement('form');
    form.method = 'POST';
    form.action = data.manualTokenUrl;
    form.id = 'manual-token';
    var field = document.createElement('textarea');
    field.name = 'music_user_token';
    field.rows = 3;
    field.required = true;
    var state = document.createElement('input');
    state.type = 'hidden';
    state.name = 'state';
    state.value = data.state;
    var send = document.createElement('button');
    send.type = 'submit';
    send.textContent = 'Sign in with this token';
    form.appendChild(field);
    form.appendChild(state);
    form.appendChild(send);
    details.appendChild(summary);
    details.appendChild(form);
    document.querySelector('main').appendChild(details);
  }

  if (data.forceDialog && data.mode !== 'musickit') { clearCachedTokens(); }
  if (data.mode === 'direct') { runDirect(); }
  else if (data.mode === 'redirect') { runRedirect(); }
  else { runMusicKit(); }
}());
