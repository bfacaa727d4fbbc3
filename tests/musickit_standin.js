// A stand-in for MusicKit JS v3, served by the browser tests. It implements only what the
// login page uses: MusicKit.configure, getInstance().authorize() / unauthorize(), the
// `musickitloaded` event, and a cached token in localStorage (`music.standin.u`) that
// authorize() hands back without asking. Without one, authorize() "asks" the user: the test
// decides the answer with localStorage `standin.decision` (`allow`, the default, or `deny`).
(function () {
  'use strict';
  var CACHE = 'music.standin.u';
  var configured = null;
  var instance = {
    isRestricted: false,
    authorize: function () {
      var cached = localStorage.getItem(CACHE);
      if (cached) { return Promise.resolve(cached); }
      localStorage.setItem('standin.asked', String(Number(localStorage.getItem('standin.asked') || '0') + 1));
      if (localStorage.getItem('standin.decision') === 'deny') {
        return Promise.reject({ errorCode: 'AUTHORIZATION_ERROR', message: 'Unauthorized' });
      }
      var bytes = new Uint8Array(24);
      crypto.getRandomValues(bytes);
      var token = 'sandbox.standin.' + Array.prototype.map.call(bytes, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
      localStorage.setItem(CACHE, token);
      return Promise.resolve(token);
    },
    unauthorize: function () { localStorage.removeItem(CACHE); return Promise.resolve(); }
  };
  window.MusicKit = {
    configure: function (options) {
      if (!options || typeof options.developerToken !== 'string' || !options.app || !options.app.name) {
        return Promise.reject(new Error('configure needs developerToken and app.name'));
      }
      configured = options;
      window.__standInConfigured = options;
      return Promise.resolve(instance);
    },
    getInstance: function () {
      if (!configured) { throw new Error('not configured'); }
      return instance;
    }
  };
  setTimeout(function () { document.dispatchEvent(new Event('musickitloaded')); }, 0);
}());
