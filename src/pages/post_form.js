// Shared by the login and return pages: navigate to `action` by POSTing `fields` as a
// hidden form, so tokens travel in a body, not in a URL. Null and undefined fields are left out.
function postForm(action, fields) {
  'use strict';
  var form = document.createElement('form');
  form.method = 'POST';
  form.action = action;
  Object.keys(fields).forEach(function (name) {
    if (fields[name] === null || fields[name] === undefined) { return; }
    var input = document.createElement('input');
    input.type = 'hidden';
    input.name = name;
    input.value = String(fields[name]);
    form.appendChild(input);
  });
  document.body.appendChild(form);
  form.submit();
}
