// The server browser's live refresh (progressive enhancement: the page works without it).
// Every few seconds, fetch the list rendered by the server for the same filters and swap it in;
// the list's ETag makes an unchanged list a 304 (nothing swapped). Heartbeat ages are kept
// current here from their timestamps (data-ts), so the server renders the list once per change.
(function () {
  "use strict";
  var box = document.getElementById("servers");
  if (!box || !window.fetch) return;
  var every = (parseInt(box.getAttribute("data-refresh"), 10) || 5) * 1000;
  var etag = box.getAttribute("data-etag") || null; // the list shown now
  var skew = 0; // seconds to add to this device's clock (0 unless it is clearly wrong)
  function age(s) {
    s = Math.max(0, Math.floor(s));
    if (s < 120) return s + " s";
    if (s < 7200) return Math.floor(s / 60) + " min";
    if (s < 172800) return Math.floor(s / 3600) + " h";
    return Math.floor(s / 86400) + " d";
  }
  function ages() {
    var stamp = box.querySelector("[data-now]");
    var now = Date.now() / 1000;
    if (stamp) { // the server's clock when it rendered the list (at most ~15 s ago)
      var off = parseFloat(stamp.getAttribute("data-now")) - now;
      skew = Math.abs(off) > 30 ? off : 0;
      stamp.removeAttribute("data-now");
    }
    var cells = box.querySelectorAll("[data-ts]");
    for (var i = 0; i < cells.length; i++) {
      cells[i].textContent = age(now + skew - parseFloat(cells[i].getAttribute("data-ts"))) + " ago";
    }
  }
  function refresh() {
    if (document.hidden) return;
    var headers = etag ? {"If-None-Match": etag} : {};
    fetch("/fragments/servers" + window.location.search,
          {credentials: "same-origin", cache: "no-store", headers: headers})
      .then(function (resp) {
        if (resp.status !== 200) return null;
        etag = resp.headers.get("ETag");
        return resp.text();
      })
      .then(function (html) {
        if (html !== null) box.innerHTML = html;
        ages();
      })
      .catch(function () {});
  }
  ages();
  setInterval(refresh, every);
  document.addEventListener("visibilitychange", refresh);
  // filters apply as soon as they change; the Apply button stays for pages without script
  var form = document.getElementById("filters");
  if (form) form.addEventListener("change", function () { form.submit(); });
})();
