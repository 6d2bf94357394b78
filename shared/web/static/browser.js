// The server browser's live refresh (progressive enhancement: the page works without it).
// Every few seconds, fetch the list rendered by the server for the same filters and swap it in.
(function () {
  "use strict";
  var box = document.getElementById("servers");
  if (!box || !window.fetch) return;
  var every = (parseInt(box.getAttribute("data-refresh"), 10) || 5) * 1000;
  function refresh() {
    if (document.hidden) return;
    fetch("/fragments/servers" + window.location.search, {credentials: "same-origin"})
      .then(function (resp) { return resp.ok ? resp.text() : null; })
      .then(function (html) { if (html !== null) box.innerHTML = html; })
      .catch(function () {});
  }
  setInterval(refresh, every);
  document.addEventListener("visibilitychange", refresh);
  // filters apply as soon as they change; the Apply button stays for pages without script
  var form = document.getElementById("filters");
  if (form) form.addEventListener("change", function () { form.submit(); });
})();
